"""DiT and DiT-T2I over TexTok's 1D latent tokens (Peebles & Xie 2023; TexTok §3.3).

Read top to bottom: the config and its presets, the embedders, then the model.

Each latent token [d] is one DiT token (patch size 1): a linear layer lifts it to the width,
1D position embeddings (fixed sin-cos as in DiT, or learned) mark its slot, and a stack of the
project's one transformer ``Block`` with adaLN-Zero (``cond_dim=width``) follows. The
conditioning vector c = timestep embedding (+ class embedding for ``condition="class"``)
drives every block's shift / scale / gate; with ``time_inputs=2`` (MeanFlow) a second timestep
embedder adds the interval length t - r to c. ``condition="text"`` is DiT-T2I: the same blocks
with their cross-attention layer (``context_dim=text_dim``) over the caption embeddings, with
padding masked. A final adaLN layer maps each token to ``2d`` channels (noise and the learned
variance interpolation, ADM) or ``d`` without learned variance (flow matching).

Classifier-free guidance needs an unconditional model inside the conditional one: in training,
labels are replaced by a null class (index ``num_classes``) with probability
``class_dropout``, and captions by a learned null text embedding with probability
``caption_dropout``. ``drop`` forces that replacement (guidance's unconditional half).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import numpy as np
import torch
import torch.nn as nn

from ..config import apply_preset
from ..io import PretrainedMixin
from ..text import TextEmbedding
from .modules.transformer import ACTIVATIONS, Transformer, modulate


@dataclasses.dataclass
class DiTConfig:
    num_tokens: int = 32  # N latent tokens per image (TexTok's N)
    token_dim: int = 8  # d channels per token
    width: int = 1152
    depth: int = 28
    heads: int = 16
    mlp_ratio: float = 4.0
    condition: Literal["class", "text", "none"] = "class"
    num_classes: int = 1000  # condition="class": labels in [0, num_classes); index num_classes is the null class
    class_dropout: float = 0.1  # label dropout for classifier-free guidance
    text_dim: int = 384  # condition="text": width of the caption embeddings (MiniLM 384, T5-XL 2048)
    caption_dropout: float = 0.1  # caption dropout for classifier-free guidance
    learn_sigma: bool = True  # output 2d channels: noise + variance interpolation (ADM hybrid loss)
    pos_embed: Literal["sincos", "learned"] = "sincos"
    time_inputs: int = 1  # 1: t; 2: t and the interval t - r (MeanFlow's average velocity over [r, t])
    mlp_act: Literal["gelu_tanh", "gelu", "relu2"] = "gelu_tanh"  # the MLP activation: DiT's tanh GELU, exact, ReLU^2

    def __post_init__(self):
        def need(ok: bool, field: str, why: str):
            if not ok:
                raise ValueError(f"DiTConfig.{field}={getattr(self, field)!r}: {why}")

        for name in ("num_tokens", "token_dim", "width", "depth", "heads", "text_dim"):
            need(isinstance(getattr(self, name), int) and getattr(self, name) > 0, name, "must be a positive integer")
        need(self.width % self.heads == 0, "width", f"must be divisible by heads={self.heads}")
        need(self.pos_embed != "sincos" or self.width % 2 == 0, "width", "must be even for sin-cos position embeddings")
        need(self.mlp_ratio > 0, "mlp_ratio", "must be positive")
        need(self.condition in ("class", "text", "none"), "condition", "must be 'class', 'text' or 'none'")
        need(self.condition != "class" or (isinstance(self.num_classes, int) and self.num_classes > 0),
             "num_classes", "must be a positive integer for a class-conditional DiT")
        need(0.0 <= self.class_dropout < 1.0, "class_dropout", "must lie in [0, 1)")
        need(0.0 <= self.caption_dropout < 1.0, "caption_dropout", "must lie in [0, 1)")
        need(self.pos_embed in ("sincos", "learned"), "pos_embed", "must be 'sincos' or 'learned'")
        need(self.time_inputs in (1, 2), "time_inputs", "must be 1 (t) or 2 (t and t - r, MeanFlow)")
        need(self.mlp_act in ACTIVATIONS, "mlp_act", f"must be one of {sorted(ACTIVATIONS)}")

    @property
    def out_channels(self) -> int:
        return 2 * self.token_dim if self.learn_sigma else self.token_dim

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "DiTConfig":
        return cls(**apply_preset({"preset": name, **overrides}, DIT_PRESETS, "DiT"))


#: DiT paper sizes (depth / width / heads) plus CPU-sized ones for tests and small experiments.
DIT_PRESETS: dict[str, dict] = {
    "dit-s": dict(depth=12, width=384, heads=6),
    "dit-b": dict(depth=12, width=768, heads=12),
    "dit-l": dict(depth=24, width=1024, heads=16),
    "dit-xl": dict(depth=28, width=1152, heads=16),
    "dit-mini": dict(depth=6, width=256, heads=4),
    "dit-tiny": dict(depth=2, width=64, heads=4),
}


def sincos_1d(length: int, dim: int) -> torch.Tensor:
    """Fixed 1D sin-cos position embeddings [length, dim] (DiT / MAE's 1D formula)."""
    omega = 1.0 / 10000 ** (np.arange(dim // 2, dtype=np.float64) / (dim / 2.0))
    out = np.arange(length, dtype=np.float64)[:, None] * omega[None]
    return torch.from_numpy(np.concatenate([np.sin(out), np.cos(out)], axis=1)).float()


class TimestepEmbedder(nn.Module):
    """Scalar timesteps t [B] (float; 0..999 for the 1000-step schedule) -> [B, width]."""

    def __init__(self, width: int, frequency_dim: int = 256):
        super().__init__()
        self.frequency_dim = frequency_dim
        self.mlp = nn.Sequential(nn.Linear(frequency_dim, width), nn.SiLU(), nn.Linear(width, width))

    @staticmethod
    def frequencies(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
        half = dim // 2
        dtype = torch.float64 if t.dtype == torch.float64 else torch.float32  # float64 serves derivative checks
        freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=dtype, device=t.device) / half)
        args = t.to(dtype)[:, None] * freqs[None]
        emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
        return torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1) if dim % 2 else emb

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.frequencies(t, self.frequency_dim).to(self.mlp[0].weight.dtype))


class DiT(nn.Module, PretrainedMixin):
    """``out = dit(x, t, labels=..., text=...)``: x [B, N, d] noisy tokens, t [B] timesteps ->
    [B, N, 2d] (noise prediction, then the variance interpolation) or [B, N, d].
    With ``time_inputs=2``, r [B] (r <= t, same scale as t) is the start of MeanFlow's interval.

    labels: LongTensor [B] for ``condition="class"``; text: ``TextEmbedding`` ([B, L, text_dim],
    mask [B, L]) for ``condition="text"``; drop: bool [B] forces the null condition.
    """

    config_class = DiTConfig

    def __init__(self, config: DiTConfig):
        super().__init__()
        self.config = c = config
        D = c.width
        self.x_embed = nn.Linear(c.token_dim, D)  # patch size 1: one DiT token per latent token
        self.pos_embed = nn.Parameter(torch.zeros(1, c.num_tokens, D), requires_grad=c.pos_embed == "learned")
        self.t_embed = TimestepEmbedder(D)
        if c.time_inputs == 2:
            self.interval_embed = TimestepEmbedder(D)  # embeds t - r
        if c.condition == "class":
            self.y_embed = nn.Embedding(c.num_classes + 1, D)  # last row: the null class
        if c.condition == "text":
            self.null_text = nn.Parameter(torch.zeros(1, c.text_dim))
        self.transformer = Transformer(D, c.depth, c.heads, c.mlp_ratio, cond_dim=D,
                                       context_dim=c.text_dim if c.condition == "text" else None, mlp_act=c.mlp_act)
        self.final_adaLN = nn.Sequential(nn.SiLU(), nn.Linear(D, 2 * D))
        self.final_linear = nn.Linear(D, c.out_channels)
        self.initialize_weights()

    def initialize_weights(self):
        """DiT's initialisation: Xavier linears, N(0, 0.02) embeddings, and every adaLN / output
        layer at zero, so each block (and the cross-attention of DiT-T2I) starts as the identity
        on its residual stream and the model's output starts at zero."""
        c = self.config

        def init_linear(m):
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

        self.apply(init_linear)
        nn.init.xavier_uniform_(self.x_embed.weight)
        with torch.no_grad():
            if c.pos_embed == "sincos":
                if self.pos_embed.device.type != "meta":  # a size check builds on meta: no table to compute
                    self.pos_embed.copy_(sincos_1d(c.num_tokens, c.width)[None])
            else:
                nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.t_embed.mlp[0].weight, std=0.02)
        nn.init.normal_(self.t_embed.mlp[2].weight, std=0.02)
        if c.time_inputs == 2:
            nn.init.normal_(self.interval_embed.mlp[0].weight, std=0.02)
            nn.init.normal_(self.interval_embed.mlp[2].weight, std=0.02)
        if c.condition == "class":
            nn.init.normal_(self.y_embed.weight, std=0.02)
        if c.condition == "text":
            nn.init.normal_(self.null_text, std=0.02)
        zero = [self.final_adaLN[-1], self.final_linear]
        for block in self.transformer.blocks:
            zero.append(block.adaLN_modulation[-1])
            if block.cross_attn is not None:
                zero.append(block.cross_attn.proj)  # cross-attention's residual is ungated: zero its output
        for layer in zero:
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    # ---- conditions ---------------------------------------------------------------------
    def _drop_mask(self, batch: int, p: float, drop: torch.Tensor | None, device) -> torch.Tensor | None:
        if drop is not None:
            drop = torch.as_tensor(drop, dtype=torch.bool, device=device)
            if drop.shape != (batch,):
                raise ValueError(f"drop must be a bool tensor [B={batch}], got shape {tuple(drop.shape)}")
            return drop
        if self.training and p > 0:
            return torch.rand(batch, device=device) < p
        return None

    def embed_labels(self, labels: torch.Tensor, drop: torch.Tensor | None = None) -> torch.Tensor:
        """labels [B] -> [B, width]; dropped rows (training dropout or ``drop``) get the null class."""
        c = self.config
        if labels is None:
            raise ValueError("this DiT is class-conditional (condition='class'): labels are missing")
        labels = torch.as_tensor(labels, dtype=torch.long, device=self.y_embed.weight.device)
        if labels.ndim != 1:
            raise ValueError(f"labels must be [B], got shape {tuple(labels.shape)}")
        if labels.numel() and labels.device.type != "meta" and (labels.min() < 0 or labels.max() > c.num_classes):
            raise ValueError(f"labels must lie in [0, {c.num_classes}) (or {c.num_classes} = null), got {labels.tolist()}")
        drop = self._drop_mask(labels.shape[0], c.class_dropout, drop, labels.device)
        if drop is not None:
            labels = torch.where(drop, torch.full_like(labels, c.num_classes), labels)
        return self.y_embed(labels)

    def text_context(self, text: TextEmbedding, drop: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """TextEmbedding -> (context [B, L, text_dim], mask [B, L]); dropped rows become the
        learned null embedding as their one valid token."""
        c = self.config
        if not isinstance(text, TextEmbedding):
            raise ValueError(f"this DiT is text-conditioned (condition='text'): text must be a TextEmbedding, got {type(text).__name__}")
        if text.dim != c.text_dim:
            raise ValueError(f"text embeddings have width {text.dim}, the DiT expects text_dim={c.text_dim}")
        emb = text.embeddings.to(self.null_text.dtype)
        mask = text.mask
        drop = self._drop_mask(emb.shape[0], c.caption_dropout, drop, emb.device)
        if drop is not None:  # always through torch.where, so null_text joins the graph (DDP)
            null = torch.zeros_like(emb)
            null[:, 0] = self.null_text
            null_mask = torch.zeros_like(mask)
            null_mask[:, 0] = True
            emb = torch.where(drop[:, None, None], null, emb)
            mask = torch.where(drop[:, None], null_mask, mask)
        return emb, mask

    # ---- the model ----------------------------------------------------------------------
    def forward(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None = None,
                text: TextEmbedding | None = None, drop: torch.Tensor | None = None,
                r: torch.Tensor | None = None) -> torch.Tensor:
        c = self.config
        if x.ndim != 3 or tuple(x.shape[1:]) != (c.num_tokens, c.token_dim):
            raise ValueError(f"x must be [B, {c.num_tokens}, {c.token_dim}] latent tokens, got {tuple(x.shape)}")
        B = x.shape[0]
        t = torch.as_tensor(t, device=x.device)
        if t.ndim == 0:
            t = t.expand(B)
        h = self.x_embed(x.to(self.x_embed.weight.dtype)) + self.pos_embed
        cond = self.t_embed(t)
        if c.time_inputs == 2:
            if r is None:
                raise ValueError("this DiT has time_inputs=2 (MeanFlow): the interval start r is missing")
            r = torch.as_tensor(r, device=x.device)
            cond = cond + self.interval_embed(t - (r.expand(B) if r.ndim == 0 else r))
        elif r is not None:
            raise ValueError("r is given but this DiT has time_inputs=1 (one timestep input)")
        context = context_mask = None
        if c.condition == "class":
            cond = cond + self.embed_labels(labels, drop)
        elif c.condition == "text":
            if text is None:
                raise ValueError("this DiT is text-conditioned (condition='text'): text is missing")
            if len(text) != B:
                raise ValueError(f"batch sizes differ: {B} latents but {len(text)} captions")
            context, context_mask = self.text_context(text, drop)
        h = self.transformer(h, context=context, context_mask=context_mask, c=cond)  # ends in a plain LayerNorm
        shift, scale = self.final_adaLN(cond).chunk(2, dim=-1)
        return self.final_linear(modulate(h, shift, scale))

    # ---- bookkeeping --------------------------------------------------------------------
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def flops_per_forward(self, text_tokens: int = 0) -> int:
        """Forward FLOPs (2 * multiply-adds) of one image through the network: the matmuls,
        attention included; ``text_tokens`` is the caption length for DiT-T2I."""
        c = self.config
        D, N, hidden = c.width, c.num_tokens, int(c.width * c.mlp_ratio)
        per_block = 2 * N * (4 * D * D + 2 * D * hidden) + 2 * 2 * N * N * D + 2 * 6 * D * D
        if c.condition == "text":
            S = text_tokens
            per_block += 2 * (N * 2 * D * D + S * 2 * c.text_dim * D) + 2 * 2 * N * S * D
        io = 2 * N * D * (c.token_dim + c.out_channels) + c.time_inputs * 2 * (256 * D + D * D) + 2 * 2 * D * D
        return c.depth * per_block + io


__all__ = ["DiT", "DiTConfig", "DIT_PRESETS", "TimestepEmbedder", "sincos_1d"]
