"""textok: text-conditioned image tokenization for generation (TexTok, arXiv 2412.05796)."""

from .models import DIT_PRESETS, PRESETS, DiT, DiTConfig, TexTok, TexTokConfig, TexTokOutput
from .models.modules import DiagonalGaussian
from .text import ClassEmbedding, TextEmbedding, TextEncoder, prepare_caption

__version__ = "0.1.0"

__all__ = [
    "TexTok", "TexTokConfig", "TexTokOutput", "PRESETS", "DiagonalGaussian",
    "DiT", "DiTConfig", "DIT_PRESETS",
    "TextEncoder", "TextEmbedding", "ClassEmbedding", "prepare_caption",
]
