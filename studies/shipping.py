"""What the studies' shipping scripts share (studies/emoji32/ship_checkpoints.py, studies/scenes/ship.py): a study's
stage model written into ``src/textok/pretrained/`` in half precision with its ``SOURCE.json`` and model card, and a
text-to-image DiT beside the tokenizer it decodes through.

A shipped tokenizer folder ``<prefix>-<arm>-n<N>/`` (``ship_tokenizer``):

- ``model.safetensors``: every floating-point tensor cast to float16 (about half the size;
  ``TexTok.from_pretrained`` loads it back into a float32 model);
- ``config.json``: the model config, unchanged;
- ``SOURCE.json``: what the caller knows (run, steps, scores, recipe), plus the weights' facts: parameters, file
  size, date, and how far the float16 model's reconstructions are from the float32 model's on random inputs;
- ``README.md``: the model card, written by the caller from that ``SOURCE.json``.

A shipped DiT folder ``<prefix>-<arm>-n<N>-dit/`` (``ship_dit``) is a generation folder
(``textok.generation.Pipeline.from_pretrained`` and ``textok sample --checkpoint`` load it) whose
``generation.json`` names the tokenizer folder beside it (``../<prefix>-<arm>-n<N>``) instead of a copy:
``dit/`` (float16 weights + config), ``generation.json``, ``SOURCE.json`` and ``README.md``.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path
from typing import Callable

import torch

REPO = Path(__file__).resolve().parents[1]
OUT_ROOT = REPO / "src" / "textok" / "pretrained"
MAX_BYTES = 10 * 1024 * 1024  # a shipped folder should stay under ~10 MB (the wheel carries every one)


def arm_of(config) -> str:
    """``"baseline"`` for a TexTok config without text, else ``"textok"``."""
    return "baseline" if config.text_in == "none" else "textok"


def shipped_name(prefix: str, config) -> str:
    """``<prefix>-<arm>-n<N>``: the folder name ``textok.pretrained.find_pair`` looks for."""
    return f"{prefix}-{arm_of(config)}-n{config.num_tokens}"


def folder_bytes(folder: Path) -> int:
    """The bytes of every file under ``folder``."""
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


def shown_path(path: Path) -> str:
    """``path`` relative to the repository where it lies inside it, else as it is."""
    try:
        return str(Path(path).resolve().relative_to(REPO))
    except ValueError:
        return str(path)


@torch.no_grad()
def half_precision_gap(model32, model16, batch: int = 8, seed: int = 0) -> dict:
    """Reconstructions of random images (and random text) by the float32 model and the model
    loaded back from float16: the largest absolute difference and their PSNR (in [-1, 1] units)."""
    from textok import CaptionedTokenizer
    from textok.text import TextEmbedding

    c = model32.config
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, 3, c.image_size, c.image_size, generator=g) * 2 - 1
    text = None
    if c.text_in != "none":
        L = min(8, c.max_text_tokens)
        text = TextEmbedding(torch.randn(batch, L, c.text_dim, generator=g), torch.ones(batch, L, dtype=torch.bool))
    a = CaptionedTokenizer(model32).reconstruct(x, text)
    b = CaptionedTokenizer(model16).reconstruct(x, text)
    mse = float((a - b).pow(2).mean())
    return {"max_abs_difference": float((a - b).abs().max()),
            "psnr_db": float("inf") if mse == 0 else 10 * torch.log10(torch.tensor(4.0 / mse)).item(),
            "inputs": f"{batch} uniform random images" + (" with random text embeddings" if text is not None else "")}


def _fresh_tmp(out: Path) -> Path:
    tmp = out.with_name(f".{out.name}.tmp")
    if tmp.exists():  # a killed run's leftover
        shutil.rmtree(tmp)
    return tmp


def _publish(tmp: Path, out: Path, name: str) -> Path:
    from textok.io import replace_dir_atomic

    total = folder_bytes(tmp)
    if total > MAX_BYTES:
        print(f"warning: {name} is {total / 1e6:.1f} MB, over the {MAX_BYTES / 1e6:.0f} MB aimed at", file=sys.stderr)
    out.parent.mkdir(parents=True, exist_ok=True)
    replace_dir_atomic(tmp, out)
    return out


def ship_tokenizer(stage: str | Path, out: str | Path, source: dict, readme: Callable[[dict], str]) -> Path:
    """Write the shipped folder ``out`` (replaced atomically) from the stage model folder ``stage``: float16
    weights, ``config.json``, ``SOURCE.json`` (``source`` and the weights' facts) and ``README.md``
    (``readme(SOURCE)``); returns ``out``."""
    from textok.config import to_dict
    from textok.io import write_json_atomic, write_text_atomic
    from textok.models import TexTok

    stage, out = Path(stage), Path(out)
    model32 = TexTok.from_pretrained(stage)  # refuses a folder whose weights do not fit its config
    c = model32.config
    tmp = _fresh_tmp(out)
    TexTok.from_pretrained(stage).half().save_pretrained(tmp)
    reloaded = TexTok.from_pretrained(tmp)
    source = {"name": out.name, "arm": arm_of(c), "num_tokens": c.num_tokens, "stage_folder": str(stage),
              "date": time.strftime("%Y-%m-%d"), "dtype": "float16",
              "parameters": sum(p.numel() for p in model32.parameters()),
              "weights_bytes": (tmp / "model.safetensors").stat().st_size,
              "float16_vs_float32": half_precision_gap(model32, reloaded), "config": to_dict(c), **source}
    write_json_atomic(tmp / "SOURCE.json", source)
    write_text_atomic(tmp / "README.md", readme(source))
    return _publish(tmp, out, out.name)


def ship_dit(generation: str | Path, tokenizer: str | Path, source: dict, readme: Callable[[dict], str],
             out: str | Path | None = None) -> Path:
    """Write the DiT of the generation folder ``generation`` (``textok train-dit``'s ``<run>/model``) as a shipped
    folder beside the shipped ``tokenizer`` folder (default ``<tokenizer>-dit``, replaced atomically): float16
    ``dit/``, ``generation.json`` naming ``../<tokenizer's name>``, ``SOURCE.json`` and ``README.md``.

    Refused (``ValueError``) unless the generation folder's tokenizer is the shipped one: the same config, and
    weights equal once cast to float16 (the DiT learned the tokens of exactly that model)."""
    import dataclasses

    from textok.config import to_dict
    from textok.generation import GENERATION_NAME, Pipeline
    from textok.io import write_json_atomic, write_text_atomic
    from textok.models import TexTok

    generation, tokenizer = Path(generation), Path(tokenizer)
    out = Path(out) if out is not None else tokenizer.with_name(tokenizer.name + "-dit")
    if out.parent.resolve() != tokenizer.parent.resolve():
        raise ValueError(f"{out}: a shipped DiT lies beside its tokenizer ({tokenizer.parent})")
    pipe = Pipeline.from_pretrained(generation)
    if pipe.dit.config.condition != "text":
        raise ValueError(f"{generation}: a {pipe.dit.config.condition}-conditional DiT; the shipped DiTs are "
                         "text-to-image (its caption pool would not travel)")
    shipped = TexTok.from_pretrained(tokenizer)
    if pipe.tokenizer.config != shipped.config:
        raise ValueError(f"{generation}: its tokenizer's config differs from {tokenizer}'s: the DiT generates the "
                         "tokens of another tokenizer")
    ours, theirs = pipe.tokenizer.state_dict(), shipped.state_dict()
    differ = [k for k, v in ours.items()
              if not torch.equal(v.half().float() if v.is_floating_point() else v, theirs[k])]
    if differ:
        raise ValueError(f"{generation}: its tokenizer's weights differ from {tokenizer}'s (first: {differ[0]}): the "
                         "DiT generates the tokens of another tokenizer (ship the tokenizer of the same stage)")
    tmp = _fresh_tmp(out)
    dit = pipe.dit.float()
    parameters = sum(p.numel() for p in dit.parameters())
    dit.half().save_pretrained(tmp / "dit")
    config = dataclasses.replace(pipe.config, tokenizer=f"../{tokenizer.name}", tokenizer_revision=None,
                                 caption_pool=None)
    write_json_atomic(tmp / GENERATION_NAME, to_dict(config))
    source = {"name": out.name, "tokenizer": tokenizer.name, "generation_folder": str(generation),
              "date": time.strftime("%Y-%m-%d"), "dtype": "float16", "parameters": parameters,
              "weights_bytes": (tmp / "dit" / "model.safetensors").stat().st_size,
              "dit_config": to_dict(pipe.dit.config), "diffusion": to_dict(config.diffusion), **source}
    write_json_atomic(tmp / "SOURCE.json", source)
    write_text_atomic(tmp / "README.md", readme(source))
    Pipeline.from_pretrained(tmp)  # the folder loads from where it is (its tokenizer beside it)
    return _publish(tmp, out, out.name)
