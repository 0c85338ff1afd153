"""textok: text-conditioned image tokenization for generation (TexTok, arXiv 2412.05796)."""

import os as _os
import sys as _sys

if "torch" not in _sys.modules:
    # OpenMP threads that spin while waiting collapse throughput when another process shares
    # the cores (measured: docs/results/throughput.md); passive waiting costs ~5% on an idle
    # machine. Only a default, and only effective before torch (and its OpenMP) is loaded.
    _os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from . import pretrained
from .data.transforms import load_tensor, to_pil
from .models import DIT_PRESETS, PRESETS, DiT, DiTConfig, TexTok, TexTokConfig, TexTokOutput
from .models.modules import DiagonalGaussian
from .text import TextEmbedding, TextEncoder, prepare_caption
from .tokenizer import CaptionedTokenizer

__version__ = "0.1.0"

# ``CaptionedTokenizer`` is what users hold (a TexTok with its captions' rule); ``TexTok`` is its nn.Module.
__all__ = [
    "CaptionedTokenizer", "pretrained", "load_tensor", "to_pil",
    "TexTok", "TexTokConfig", "TexTokOutput", "PRESETS", "DiagonalGaussian",
    "DiT", "DiTConfig", "DIT_PRESETS",
    "TextEncoder", "TextEmbedding", "prepare_caption",
]
