"""Models: TexTok (tokenizer + detokenizer). Building blocks live in ``textok.models.modules``."""

from .dit import DIT_PRESETS, DiT, DiTConfig
from .textok import PRESETS, TexTok, TexTokConfig, TexTokOutput

__all__ = ["TexTok", "TexTokConfig", "TexTokOutput", "PRESETS", "DiT", "DiTConfig", "DIT_PRESETS"]
