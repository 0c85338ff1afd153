"""Models: TexTok (tokenizer + detokenizer). Building blocks live in ``textok.models.modules``."""

from .textok import PRESETS, TexTok, TexTokConfig, TexTokOutput

__all__ = ["TexTok", "TexTokConfig", "TexTokOutput", "PRESETS"]
