"""The one transformer block of the project.

``Block`` serves the TexTok tokenizer and detokenizer (pre-norm self-attention + MLP, with an
optional cross-attention layer for the ``"cross-attention"`` text-conditioning ablation) and the
DiT (the same block with adaLN-Zero modulation from a conditioning vector, and with the
cross-attention layer for DiT-T2I). Attention always goes through
``torch.nn.functional.scaled_dot_product_attention`` so that flash / memory-efficient kernels
are used where the hardware has them.

Shapes: B batch, L query length, S key length, D width.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def _attn_mask(mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """Key-padding mask [B, S] (True = attend) -> additive mask [B, 1, 1, S] for SDPA.

    An additive mask (0 / -inf) rather than a boolean one keeps SDPA on its fused kernels and
    lets us guard the all-masked row: a query that may attend nowhere gets zeros, not NaN.
    """
    if mask is None:
        return None
    if mask.dtype != torch.bool:
        mask = mask.bool()
    # rows with no valid key at all: let them attend everywhere; callers zero their output.
    empty = ~mask.any(dim=1, keepdim=True)
    mask = mask | empty
    out = torch.zeros(mask.shape, dtype=dtype, device=mask.device)
    out.masked_fill_(~mask, float("-inf"))
    return out[:, None, None, :]


class Attention(nn.Module):
    """Multi-head attention; self-attention when ``context`` is None, cross-attention otherwise."""

    def __init__(self, dim: int, heads: int, context_dim: int | None = None, qkv_bias: bool = True):
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.head_dim = dim // heads
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(context_dim or dim, 2 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x [B, L, D], context [B, S, C] (defaults to x), mask [B, S] bool -> [B, L, D]."""
        B, L, D = x.shape
        context = x if context is None else context
        S = context.shape[1]
        q = self.q(x).view(B, L, self.heads, self.head_dim).transpose(1, 2)
        k, v = self.kv(context).view(B, S, 2, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=_attn_mask(mask, q.dtype))
        out = out.transpose(1, 2).reshape(B, L, D)
        if mask is not None:
            # a sample whose context is entirely padding contributes nothing
            out = out * mask.any(dim=1).to(out.dtype)[:, None, None]
        return self.proj(out)


class ReLUSquared(nn.Module):
    """relu(x)^2, the MLP activation of Primer (So et al., 2021) and of modded-nanogpt's speedrun."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x).square()


#: the MLP's activation: the tanh-approximate GELU of DiT and ViT (every shipped model), the exact (erf) GELU,
#: 2-4x cheaper on CPUs (docs/results/throughput.md), or ReLU squared; none has weights, so a model loads across
ACTIVATIONS = {"gelu_tanh": lambda: nn.GELU(approximate="tanh"), "gelu": nn.GELU, "relu2": ReLUSquared}


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int, act: str = "gelu_tanh"):
        super().__init__()
        if act not in ACTIVATIONS:
            raise ValueError(f"mlp_act={act!r}: must be one of {sorted(ACTIVATIONS)}")
        self.fc1 = nn.Linear(dim, hidden)
        self.act = ACTIVATIONS[act]()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """adaLN: x [B, L, D], shift/scale [B, D]."""
    return x * (1 + scale[:, None]) + shift[:, None]


class Block(nn.Module):
    """Pre-norm transformer block: self-attention, optional cross-attention, MLP.

    Args:
        dim: width D.
        heads: attention heads.
        mlp_ratio: MLP hidden width / D.
        context_dim: if set, a cross-attention layer over a context [B, S, context_dim] follows
            the self-attention (the cross-attention text ablation, DiT-T2I).
        cond_dim: if set, adaLN-Zero: LayerNorms lose their affine parameters and a conditioning
            vector c [B, cond_dim] produces shift, scale and gate for the attention and MLP
            branches; the gates start at zero so the block starts as the identity (DiT).
    """

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0, context_dim: int | None = None,
                 cond_dim: int | None = None, mlp_act: str = "gelu_tanh"):
        super().__init__()
        affine = cond_dim is None
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=affine, eps=1e-6)
        self.attn = Attention(dim, heads)
        if context_dim is not None:
            self.norm_cross = nn.LayerNorm(dim, eps=1e-6)
            self.cross_attn = Attention(dim, heads, context_dim=context_dim)
        else:
            self.norm_cross = self.cross_attn = None
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=affine, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), mlp_act)
        if cond_dim is not None:
            self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(cond_dim, 6 * dim))
            nn.init.zeros_(self.adaLN_modulation[-1].weight)
            nn.init.zeros_(self.adaLN_modulation[-1].bias)
        else:
            self.adaLN_modulation = None

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        context: torch.Tensor | None = None,
        context_mask: torch.Tensor | None = None,
        c: torch.Tensor | None = None,
        keep: slice | None = None,
    ) -> torch.Tensor:
        """x [B, L, D]; mask [B, L] (keys to attend); context [B, S, C]; context_mask [B, S]; c [B, cond_dim].

        ``keep``: compute only these positions' outputs, [B, len(keep), D] (every position is still a key and a
        value): what the last block of a stack needs when only some of its outputs are read."""
        if self.adaLN_modulation is not None:
            shift_a, scale_a, gate_a, shift_m, scale_m, gate_m = self.adaLN_modulation(c).chunk(6, dim=-1)
            h = modulate(self.norm1(x), shift_a, scale_a)
        else:
            h = self.norm1(x)
        if keep is None:
            a = self.attn(h, mask=mask)
        else:  # queries from the kept positions only; keys and values from all (the same weights as self-attention)
            x = x[:, keep]
            a = self.attn(h[:, keep], context=h, mask=mask)
        x = x + (gate_a[:, None] * a if self.adaLN_modulation is not None else a)
        if self.cross_attn is not None:
            x = x + self.cross_attn(self.norm_cross(x), context=context, mask=context_mask)
        if self.adaLN_modulation is not None:
            x = x + gate_m[:, None] * self.mlp(modulate(self.norm2(x), shift_m, scale_m))
        else:
            x = x + self.mlp(self.norm2(x))
        return x


class Transformer(nn.Module):
    """A stack of ``depth`` identical ``Block``s followed by a final LayerNorm."""

    def __init__(self, dim: int, depth: int, heads: int, mlp_ratio: float = 4.0, context_dim: int | None = None,
                 cond_dim: int | None = None, mlp_act: str = "gelu_tanh"):
        super().__init__()
        self.blocks = nn.ModuleList(Block(dim, heads, mlp_ratio, context_dim, cond_dim, mlp_act) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, elementwise_affine=cond_dim is None, eps=1e-6)

    def forward(self, x, mask=None, context=None, context_mask=None, c=None, keep: slice | None = None):
        """x [B, L, D] -> [B, L, D], or [B, len(keep), D]: with ``keep`` the last block computes only those
        positions (the same values as ``forward(x)[:, keep]``, for less work)."""
        for i, block in enumerate(self.blocks):
            last = i == len(self.blocks) - 1
            x = block(x, mask=mask, context=context, context_mask=context_mask, c=c, keep=keep if last else None)
        return self.norm(x)
