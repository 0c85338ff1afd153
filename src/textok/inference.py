"""Library functions behind ``textok reconstruct`` and ``textok info``: thin over ``CaptionedTokenizer``."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Sequence

import torch

from .config import to_dict
from .data.transforms import center_crop, load_image, make_grid, to_pil, to_tensor
from .io import atomic_path, check_outputs, landing_path
from .models import TexTok
from .text import TextEncoder
from .tokenizer import CaptionedTokenizer, load_tokenizer

log = logging.getLogger(__name__)


@torch.no_grad()
def reconstruct(images: Sequence[str | os.PathLike], checkpoint: str | os.PathLike | TexTok | CaptionedTokenizer,
                captions: Sequence[str] | None = None, out: str | os.PathLike | None = None,
                device: str | torch.device = "cpu", encoder: TextEncoder | None = None,
                overwrite: bool = False) -> torch.Tensor:
    """Tokenize and detokenize image files (centre-cropped to the model's size) with ``checkpoint`` (a
    folder, a Hub repo id, a ``TexTok`` or a ``CaptionedTokenizer``) and ``captions`` (one, or one per
    image; ignored by the no-text baseline); returns [B, 3, H, W] in [-1, 1].

    ``out``: a file path writes a grid (originals on the top row, reconstructions below); a
    folder path writes one ``<name>_rec.png`` per image. ``encoder``: a loaded text encoder to use
    instead of loading the model's own. Refused before any work (``textok.io.check_outputs``): an
    output that exists (unless ``overwrite``), that is an input, or that two inputs share
    (``a/x.png`` and ``b/x.png`` into one folder).
    """
    if not images:
        raise ValueError("no images given")
    if out is not None:
        check_outputs(_output_paths(images, out), inputs=images, overwrite=overwrite)
    tok = load_tokenizer(checkpoint, device, **({"text": encoder} if encoder is not None else {}))
    x = torch.stack([_load(p, tok.config.image_size) for p in images]).to(tok.device)
    rec = tok.reconstruct(x, captions)
    if out is not None:
        out = Path(out)
        if _is_grid(out):
            grid = make_grid(torch.cat([x, rec]).cpu(), nrow=len(images))
            with atomic_path(out) as tmp:
                to_pil(grid).save(tmp, format=out.suffix.lstrip(".").replace("jpg", "jpeg").upper())
        else:
            landing_path(out).mkdir(parents=True, exist_ok=True)  # nothere/../dir makes no nothere/
            for path, r in zip(_output_paths(images, out), rec.cpu()):
                with atomic_path(path) as tmp:
                    to_pil(r).save(tmp, format="PNG")
    return rec


def _load(path: str | os.PathLike, size: int) -> torch.Tensor:
    """``load_tensor``, saying so when an animated image gives its first frame only (as the page does)."""
    image = load_image(path)
    frames = image.info.get("frames", 1)
    if frames > 1:
        log.warning("%s: animated image: frame 1 of %d used (the first, as in training data)", path, frames)
    return to_tensor(center_crop(image, size))


def _is_grid(out: Path) -> bool:
    return out.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp")


def _output_paths(images: Sequence[str | os.PathLike], out: str | os.PathLike) -> list[Path]:
    """The files ``reconstruct`` writes: the grid, or ``out/<name>_rec.png`` per image."""
    out = Path(out)
    return [out] if _is_grid(out) else [out / f"{Path(p).stem}_rec.png" for p in images]


def info(checkpoint: str | os.PathLike) -> dict:
    """Config, parameter counts and token shape of a TexTok checkpoint folder (or Hub repo id)."""
    config = CaptionedTokenizer.load_config(checkpoint)
    with torch.device("meta"):
        model = TexTok(config)
    return {
        "config": to_dict(config),
        "parameters": model.num_parameters(),
        "token_shape": list(model.token_shape),
        "gflops_per_image": round(model.flops_per_image() / 1e9, 3),
    }


__all__ = ["reconstruct", "info"]
