"""Library functions behind ``textok reconstruct`` and ``textok info``.

``text_condition`` (captions -> the text condition of a TexTok) lives in ``textok.conditioning``
and is importable from here too.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import torch

from .conditioning import text_condition
from .config import to_dict
from .data.transforms import load_tensor, make_grid, to_pil
from .io import atomic_path
from .models import TexTok
from .text import TextEncoder


def load_tokenizer(checkpoint: str | os.PathLike | TexTok, device: str | torch.device = "cpu") -> TexTok:
    if isinstance(checkpoint, TexTok):
        return checkpoint.to(device).eval()
    return TexTok.from_pretrained(checkpoint, map_location=device)


@torch.no_grad()
def reconstruct(images: Sequence[str | os.PathLike], checkpoint: str | os.PathLike | TexTok,
                captions: Sequence[str] | None = None, out: str | os.PathLike | None = None,
                device: str | torch.device = "cpu", encoder: TextEncoder | None = None) -> torch.Tensor:
    """Tokenize and detokenize image files; returns [B, 3, H, W] in [-1, 1].

    ``out``: a file path writes a grid (originals on the top row, reconstructions below); a
    folder path writes one ``<name>_rec.png`` per image.
    """
    if not images:
        raise ValueError("no images given")
    model = load_tokenizer(checkpoint, device)
    x = torch.stack([load_tensor(p, model.config.image_size) for p in images]).to(device)
    text = text_condition(model, captions, len(images), encoder)
    rec = model.decode(model.encode(x, text), text).clamp(-1, 1)
    if out is not None:
        out = Path(out)
        if out.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp"):
            grid = make_grid(torch.cat([x, rec]).cpu(), nrow=len(images))
            with atomic_path(out) as tmp:
                to_pil(grid).save(tmp, format=out.suffix.lstrip(".").replace("jpg", "jpeg").upper())
        else:
            out.mkdir(parents=True, exist_ok=True)
            for path, r in zip(images, rec.cpu()):
                with atomic_path(out / f"{Path(path).stem}_rec.png") as tmp:
                    to_pil(r).save(tmp, format="PNG")
    return rec


def info(checkpoint: str | os.PathLike) -> dict:
    """Config, parameter counts and token shape of a TexTok checkpoint folder."""
    config = TexTok.load_config(checkpoint)
    with torch.device("meta"):
        model = TexTok(config)
    return {
        "config": to_dict(config),
        "parameters": model.num_parameters(),
        "token_shape": list(model.token_shape),
        "gflops_per_image": round(model.flops_per_image() / 1e9, 3),
    }


__all__ = ["load_tokenizer", "text_condition", "reconstruct", "info"]
