"""TexTok: text-conditioned image tokenizer and detokenizer (Zha et al., arXiv 2412.05796).

Read top to bottom: the config and its presets, then the model.

Tokenizer (encoder), a ViT over the concatenation of
    [ P patch tokens | N learnable image tokens | Nt projected text tokens ]
keeps the N image-token outputs and maps them linearly to d channels (2d for the KL latent:
mean and log-variance). Detokenizer (decoder), a ViT over
    [ P learnable patch tokens | N image tokens projected d -> width | Nt projected text tokens ]
keeps the P patch outputs, maps each to p*p*3 pixels and unpatchifies. Text padding is masked
out of attention, so the result does not depend on how far a caption is padded.

``text_in`` picks where text goes ("both", "encoder", "decoder", or "none" for the no-text
baseline, which then has no text parameters at all); ``text_conditioning`` picks in-context
tokens (the paper) or a cross-attention layer per block (the paper's ablation).
"""

from __future__ import annotations

import dataclasses
from typing import Literal, NamedTuple

import torch
import torch.nn as nn

from ..config import apply_preset
from ..io import PretrainedMixin
from ..text import TextEmbedding
from .modules.posterior import DiagonalGaussian
from .modules.transformer import ACTIVATIONS, Block, Transformer


@dataclasses.dataclass
class TexTokConfig:
    image_size: int = 256
    patch_size: int = 8
    num_tokens: int = 128  # N, latent image tokens
    token_dim: int = 8  # d, channels per latent token
    width: int = 768
    depth: int = 12  # per ViT: tokenizer and detokenizer each have `depth` blocks
    heads: int = 12
    mlp_ratio: float = 4.0
    text_dim: int = 384  # width of the frozen text encoder's output (MiniLM: 384, T5-XL: 2048)
    max_text_tokens: int = 128  # Nt
    text_conditioning: Literal["in-context", "cross-attention"] = "in-context"
    text_in: Literal["both", "encoder", "decoder", "none"] = "both"
    latent: Literal["kl", "deterministic"] = "kl"
    text_encoder: str = "minilm"  # what produced text_dim-wide embeddings; the CLI builds it from this
    # LayerNorm on the frozen encoder's features before the projection: encoders differ in scale (all-mpnet-base-v2's
    # per-channel std is ~3.6x smaller than MiniLM's), which otherwise sets how fast the text path learns
    text_norm: bool = False
    # each block's residual branches (attention and MLP output projections) start at zero, so every block starts as
    # the identity (as modded-nanogpt's speedrun does): a speedrun lever (docs/results/speedrun.md)
    zero_init_residual: bool = False
    # the blocks' MLP activation: "gelu_tanh" (DiT's, every shipped model's), "gelu" (exact, cheaper on CPUs) or
    # "relu2" (ReLU squared, cheaper still)
    mlp_act: Literal["gelu_tanh", "gelu", "relu2"] = "gelu_tanh"
    # the last block of the tokenizer computes only the latent tokens' outputs and the detokenizer's only the
    # patches' (the outputs read; every position is still attended to): the same model, less work. False: every
    # position, as a reference for the speed it saves
    prune_last_block: bool = True

    def __post_init__(self):
        def need(ok: bool, field: str, why: str):
            if not ok:
                raise ValueError(f"TexTokConfig.{field}={getattr(self, field)!r}: {why}")

        for name in ("image_size", "patch_size", "num_tokens", "token_dim", "width", "depth", "heads", "text_dim", "max_text_tokens"):
            need(isinstance(getattr(self, name), int) and getattr(self, name) > 0, name, "must be a positive integer")
        need(self.image_size % self.patch_size == 0, "image_size", f"must be divisible by patch_size={self.patch_size}")
        need(self.width % self.heads == 0, "width", f"must be divisible by heads={self.heads}")
        need(self.mlp_ratio > 0, "mlp_ratio", "must be positive")
        need(self.text_conditioning in ("in-context", "cross-attention"), "text_conditioning", "must be 'in-context' or 'cross-attention'")
        need(self.text_in in ("both", "encoder", "decoder", "none"), "text_in", "must be 'both', 'encoder', 'decoder' or 'none'")
        need(self.latent in ("kl", "deterministic"), "latent", "must be 'kl' or 'deterministic'")
        need(isinstance(self.text_norm, bool), "text_norm", "must be true or false")
        need(isinstance(self.zero_init_residual, bool), "zero_init_residual", "must be true or false")
        need(isinstance(self.prune_last_block, bool), "prune_last_block", "must be true or false")
        need(self.mlp_act in ACTIVATIONS, "mlp_act", f"must be one of {sorted(ACTIVATIONS)}")

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size

    @property
    def num_patches(self) -> int:
        return self.grid**2

    @property
    def text_in_encoder(self) -> bool:
        return self.text_in in ("both", "encoder")

    @property
    def text_in_decoder(self) -> bool:
        return self.text_in in ("both", "decoder")

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "TexTokConfig":
        return cls(**apply_preset({"preset": name, **overrides}, PRESETS, "TexTok"))


#: ViT-S/B/L follow the ViT paper's widths and depths (per tokenizer / detokenizer); the
#: "mini" presets are sized for CPU experiments.
PRESETS: dict[str, dict] = {
    "textok-s": dict(width=384, depth=12, heads=6),
    "textok-b": dict(width=768, depth=12, heads=12),
    "textok-l": dict(width=1024, depth=24, heads=16),
    "textok-mini-32": dict(image_size=32, patch_size=4, num_tokens=16, width=128, depth=4, heads=4),
    "textok-mini-64": dict(image_size=64, patch_size=8, num_tokens=32, width=192, depth=6, heads=6),
}


class TexTokOutput(NamedTuple):
    reconstruction: torch.Tensor  # [B, 3, H, W]
    posterior: DiagonalGaussian  # over tokens [B, N, d]
    tokens: torch.Tensor  # the tokens that were decoded (a sample in training, the mode in eval)


class TextProjection(nn.Module):
    """Frozen-encoder embeddings [B, L, text_dim] -> ViT tokens [B, L, width] + learned positions
    (``norm``: a LayerNorm on the embeddings first)."""

    def __init__(self, text_dim: int, width: int, max_tokens: int, norm: bool = False):
        super().__init__()
        self.norm = nn.LayerNorm(text_dim) if norm else nn.Identity()
        self.proj = nn.Linear(text_dim, width)
        self.pos = nn.Parameter(torch.zeros(1, max_tokens, width))

    def forward(self, text: TextEmbedding) -> torch.Tensor:
        L = text.embeddings.shape[1]
        return self.proj(self.norm(text.embeddings.to(self.proj.weight.dtype))) + self.pos[:, :L]


class ViT(nn.Module):
    """The shared body of tokenizer and detokenizer: a ``Transformer`` that sees text either as
    extra in-context tokens (appended after ``x``) or through cross-attention, and returns only
    the outputs at ``x``'s positions."""

    def __init__(self, config: TexTokConfig, use_text: bool):
        super().__init__()
        self.use_text = use_text
        self.prune = config.prune_last_block
        self.cross = use_text and config.text_conditioning == "cross-attention"
        if use_text:
            self.text = TextProjection(config.text_dim, config.width, config.max_text_tokens, config.text_norm)
        self.transformer = Transformer(
            config.width, config.depth, config.heads, config.mlp_ratio,
            context_dim=config.width if self.cross else None, mlp_act=config.mlp_act,
        )

    def forward(self, x: torch.Tensor, text: TextEmbedding | None, keep: slice = slice(None)) -> torch.Tensor:
        """x [B, L, D] -> the outputs at x's positions ``keep`` (default all), [B, len(keep), D]. With
        ``prune_last_block`` the last block computes only those (in-context text is never an output)."""
        L = x.shape[1]
        keep = slice(*keep.indices(L)[:2])
        inner = keep if self.prune else None
        t = self.text(text) if self.use_text else None
        if not self.use_text:
            out = self.transformer(x, keep=inner)
        elif self.cross:
            out = self.transformer(x, context=t, context_mask=text.mask, keep=inner)
        else:
            mask = torch.cat([torch.ones(x.shape[0], L, dtype=torch.bool, device=x.device), text.mask], dim=1)
            out = self.transformer(torch.cat([x, t], dim=1), mask=mask, keep=inner)
        return out if self.prune else out[:, keep]


class TexTok(nn.Module, PretrainedMixin):
    """``tokens = model.encode(images, text)``; ``images = model.decode(tokens, text)``.

    images: [B, 3, H, W] in [-1, 1]; tokens: [B, N, d]; text: a ``TextEmbedding`` (or None for
    the ``text_in="none"`` baseline).
    """

    config_class = TexTokConfig

    def __init__(self, config: TexTokConfig):
        super().__init__()
        self.config = c = config
        p, D, P, N = c.patch_size, c.width, c.num_patches, c.num_tokens
        out_dim = 2 * c.token_dim if c.latent == "kl" else c.token_dim

        # tokenizer
        self.patch_embed = nn.Linear(3 * p * p, D)
        self.patch_pos = nn.Parameter(torch.zeros(1, P, D))
        self.latent_tokens = nn.Parameter(torch.zeros(1, N, D))
        self.latent_pos = nn.Parameter(torch.zeros(1, N, D))
        self.encoder = ViT(c, c.text_in_encoder)
        self.to_tokens = nn.Linear(D, out_dim)

        # detokenizer
        self.mask_token = nn.Parameter(torch.zeros(1, 1, D))
        self.decoder_patch_pos = nn.Parameter(torch.zeros(1, P, D))
        self.from_tokens = nn.Linear(c.token_dim, D)
        self.decoder_latent_pos = nn.Parameter(torch.zeros(1, N, D))
        self.decoder = ViT(c, c.text_in_decoder)
        self.to_pixels = nn.Linear(D, 3 * p * p)

        self.initialize_weights()

    #: the learned tokens and position embeddings, initialised N(0, 0.02) truncated at +-2, in
    #: this order (the text projections' positions only where text is used)
    EMBEDDINGS = ("patch_pos", "latent_tokens", "latent_pos", "mask_token", "decoder_patch_pos", "decoder_latent_pos",
                  "encoder.text.pos", "decoder.text.pos")

    def initialize_weights(self):
        """Xavier-uniform linear layers with zero biases, then ``EMBEDDINGS`` ~ truncated N(0, 0.02); with
        ``zero_init_residual`` the blocks' attention and MLP output projections are zeroed."""
        def init_linear(m):
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

        self.apply(init_linear)
        params = dict(self.named_parameters())
        for name in self.EMBEDDINGS:
            if name in params:
                nn.init.trunc_normal_(params[name], std=0.02)
        if self.config.zero_init_residual:
            for block in self.modules():
                if isinstance(block, Block):
                    for layer in (block.attn.proj, block.mlp.fc2, getattr(block.cross_attn, "proj", None)):
                        if layer is not None:
                            nn.init.zeros_(layer.weight)

    # ---- checks -------------------------------------------------------------------------
    def _check_images(self, images: torch.Tensor):
        c = self.config
        if not isinstance(images, torch.Tensor) or images.ndim != 4:
            shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise ValueError(f"images must be a [B, 3, H, W] tensor, got {shape}")
        if images.shape[1] != 3:
            raise ValueError(f"images must have 3 channels (RGB), got {images.shape[1]} in shape {tuple(images.shape)}")
        H, W = images.shape[-2:]
        if H % c.patch_size or W % c.patch_size:
            raise ValueError(f"image size {H}x{W} is not divisible by the patch size {c.patch_size}")
        if (H, W) != (c.image_size, c.image_size):
            raise ValueError(f"this model takes {c.image_size}x{c.image_size} images, got {H}x{W}")

    def _check_text(self, text: TextEmbedding | None, batch: int, needed: bool) -> TextEmbedding | None:
        c = self.config
        if not needed:
            return None  # the baseline ignores text by construction
        if text is None:
            raise ValueError(f"this model is text-conditioned (text_in={c.text_in!r}); text is missing")
        if not isinstance(text, TextEmbedding):
            raise ValueError(f"text must be a TextEmbedding (from TextEncoder), got {type(text).__name__}")
        if len(text) != batch:
            raise ValueError(f"batch sizes differ: {batch} images/tokens but {len(text)} captions")
        if text.dim != c.text_dim:
            raise ValueError(f"text embeddings have width {text.dim}, the model expects text_dim={c.text_dim} "
                             f"(encoder {c.text_encoder!r})")
        if text.embeddings.shape[1] > c.max_text_tokens:
            raise ValueError(f"{text.embeddings.shape[1]} text tokens exceed max_text_tokens={c.max_text_tokens}")
        return text

    # ---- patches ------------------------------------------------------------------------
    def patchify(self, images: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W] -> [B, P, 3*p*p]."""
        p = self.config.patch_size
        B, C, H, W = images.shape
        x = images.reshape(B, C, H // p, p, W // p, p)
        return x.permute(0, 2, 4, 1, 3, 5).reshape(B, (H // p) * (W // p), C * p * p)

    def unpatchify(self, x: torch.Tensor) -> torch.Tensor:
        """[B, P, 3*p*p] -> [B, 3, H, W]."""
        p, g = self.config.patch_size, self.config.grid
        B = x.shape[0]
        x = x.reshape(B, g, g, 3, p, p).permute(0, 3, 1, 4, 2, 5)
        return x.reshape(B, 3, g * p, g * p)

    # ---- the model ----------------------------------------------------------------------
    def encode_posterior(self, images: torch.Tensor, text: TextEmbedding | None = None) -> DiagonalGaussian:
        """images [B, 3, H, W] -> posterior over tokens [B, N, d]."""
        self._check_images(images)
        B = images.shape[0]
        text = self._check_text(text, B, self.config.text_in_encoder)
        patches = self.patch_embed(self.patchify(images).to(self.patch_embed.weight.dtype)) + self.patch_pos
        latents = (self.latent_tokens + self.latent_pos).expand(B, -1, -1)
        moments = self.to_tokens(self.encoder(torch.cat([patches, latents], dim=1), text,
                                              keep=slice(self.config.num_patches, None)))
        if self.config.latent == "kl":
            return DiagonalGaussian.from_moments(moments)
        return DiagonalGaussian(moments)

    def encode(self, images: torch.Tensor, text: TextEmbedding | None = None, sample: bool = False,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """images [B, 3, H, W] in [-1, 1] -> tokens [B, N, d] (the posterior mode unless ``sample``)."""
        posterior = self.encode_posterior(images, text)
        return posterior.sample(generator) if sample else posterior.mode()

    def decode(self, tokens: torch.Tensor, text: TextEmbedding | None = None) -> torch.Tensor:
        """tokens [B, N, d] -> images [B, 3, H, W] (unclamped; roughly [-1, 1])."""
        c = self.config
        if not isinstance(tokens, torch.Tensor) or tokens.ndim != 3 or tuple(tokens.shape[1:]) != (c.num_tokens, c.token_dim):
            shape = tuple(tokens.shape) if isinstance(tokens, torch.Tensor) else type(tokens).__name__
            raise ValueError(f"tokens must be [B, {c.num_tokens}, {c.token_dim}], got {shape}")
        B = tokens.shape[0]
        text = self._check_text(text, B, c.text_in_decoder)
        patches = (self.mask_token + self.decoder_patch_pos).expand(B, -1, -1)
        latents = self.from_tokens(tokens.to(self.from_tokens.weight.dtype)) + self.decoder_latent_pos
        x = self.decoder(torch.cat([patches, latents], dim=1), text, keep=slice(0, c.num_patches))
        return self.unpatchify(self.to_pixels(x))

    @torch.no_grad()
    def cycle_error(self, tokens: torch.Tensor, text: TextEmbedding | None = None) -> torch.Tensor:
        """How well ``text`` explains ``tokens`` [B, N, d]: the mean squared difference between the tokens
        and those of their decoding re-encoded with the same text, [B]. The criterion by which a decoding
        caption is chosen for tokens that have none (``textok.CaptionedTokenizer.choose_captions``)."""
        again = self.encode(self.decode(tokens, text).clamp(-1, 1), text)
        return (again.float() - tokens.float()).pow(2).flatten(1).mean(1)

    def forward(self, images: torch.Tensor, text: TextEmbedding | None = None, sample_posterior: bool | None = None,
                generator: torch.Generator | None = None) -> TexTokOutput:
        """Reconstruct ``images``; samples the posterior in training mode, uses its mode in eval."""
        posterior = self.encode_posterior(images, text)
        sample_posterior = self.training if sample_posterior is None else sample_posterior
        tokens = posterior.sample(generator) if sample_posterior else posterior.mode()
        return TexTokOutput(self.decode(tokens, text), posterior, tokens)

    # ---- bookkeeping --------------------------------------------------------------------
    def num_parameters(self) -> dict[str, int]:
        """Parameter counts of the tokenizer, the detokenizer and the whole model."""
        enc_prefixes = ("patch_embed", "patch_pos", "latent_tokens", "latent_pos", "encoder.", "to_tokens")
        total = sum(p.numel() for p in self.parameters())
        enc = sum(p.numel() for n, p in self.named_parameters() if n.startswith(enc_prefixes))
        return {"tokenizer": enc, "detokenizer": total - enc, "total": total}

    @property
    def token_shape(self) -> tuple[int, int]:
        return (self.config.num_tokens, self.config.token_dim)

    def flops_per_image(self) -> int:
        """Approximate forward FLOPs (2 * MACs) of encode + decode for one image: the matmuls."""
        c = self.config
        text_enc = c.max_text_tokens if c.text_in_encoder and c.text_conditioning == "in-context" else 0
        text_dec = c.max_text_tokens if c.text_in_decoder and c.text_conditioning == "in-context" else 0
        D, hidden = c.width, int(c.width * c.mlp_ratio)

        def vit(L: int) -> int:
            per_block = 2 * L * (4 * D * D + 2 * D * hidden) + 2 * 2 * L * L * D
            return c.depth * per_block

        L_enc = c.num_patches + c.num_tokens + text_enc
        L_dec = c.num_patches + c.num_tokens + text_dec
        p3 = 3 * c.patch_size**2
        io = 2 * c.num_patches * p3 * D * 2 + 2 * c.num_tokens * D * c.token_dim * 3
        return vit(L_enc) + vit(L_dec) + io


__all__ = ["TexTok", "TexTokConfig", "TexTokOutput", "PRESETS"]
