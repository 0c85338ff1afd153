"""The models shipped with the package, and the emoji splits they are scored on.

This folder is package data as well as a module: ``<name>-textok-n<N>`` and ``<name>-baseline-n<N>`` are
a TexTok and its no-text baseline (``config.json`` + float16 ``model.safetensors``, a ``SOURCE.json``
saying which study run and step they come from, a README); ``<name>-<split>-inception.npz`` holds the
Inception features of a split's originals, so ``textok demo`` can skip that pass.

    from textok import CaptionedTokenizer, pretrained
    tok = CaptionedTokenizer.from_pretrained(pretrained.path("emoji32-textok-n4"))
    textok, baseline = pretrained.shipped_checkpoints()   # every shipped folder of each arm, by N

The emoji splits are named for what they measure (issue 35): ``val`` holds other renderings (the other
style, a skin-tone sibling) of training emoji, mostly under a training image's caption, so a detokenizer
that reads the caption can recall them; ``val_unseen`` holds emoji never seen in training.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

#: where the shipped folders are: this package's own folder (read at call time, so tests can point it elsewhere)
PRETRAINED_DIR = Path(__file__).resolve().parent

#: each emoji evaluation split: what it measures ("new" / "recall"), its short name, and what it holds
EMOJI_SPLITS = {
    "val_unseen": {"measures": "new", "name": "new emoji", "holds": "emoji never seen in training"},
    "val": {"measures": "recall", "name": "recall", "holds": "other renderings of training emoji"},
}


def split_label(split: str) -> str:
    """``split`` named for what it measures, as the page and the demo print it: ``"val_unseen (new emoji)"``,
    ``"val (recall: other renderings of training emoji)"``; other names are returned as they are."""
    s = EMOJI_SPLITS.get(split)
    if s is None:
        return split
    return f"{split} ({s['name']})" if s["measures"] == "new" else f"{split} ({s['name']}: {s['holds']})"


def path(name: str) -> Path:
    """The shipped folder (or file) ``name``; ``FileNotFoundError`` listing what is shipped when absent."""
    found = PRETRAINED_DIR / name
    if not found.exists():
        have = sorted(p.name for p in PRETRAINED_DIR.iterdir() if not p.name.startswith(("_", "."))) \
            if PRETRAINED_DIR.is_dir() else []
        raise FileNotFoundError(f"no shipped model {name!r} in {PRETRAINED_DIR}; shipped: {have or 'nothing'}")
    return found


def _num_tokens(folder: Path) -> int:
    m = re.search(r"-n(\d+)$", folder.name)
    return int(m.group(1)) if m else 0


def shipped_checkpoints(root: str | os.PathLike | None = None, prefix: str = "*") -> tuple[list[Path], list[Path]]:
    """The shipped TexTok and baseline folders (``<prefix>-textok-n<N>`` and ``<prefix>-baseline-n<N>`` holding a
    ``config.json``; ``prefix`` a glob, default any name) under ``root`` (default ``PRETRAINED_DIR``), each list
    sorted by N. Empty lists if there are none."""
    root = Path(root) if root is not None else PRETRAINED_DIR
    found = {}
    for arm in ("textok", "baseline"):
        dirs = [p for p in root.glob(f"{prefix}-{arm}-n*") if (p / "config.json").is_file()] if root.is_dir() else []
        found[arm] = sorted(dirs, key=_num_tokens)
    return found["textok"], found["baseline"]


def find_pair(root: str | os.PathLike | None = None) -> dict | None:
    """The shipped TexTok and baseline at the largest N both exist for: ``{"num_tokens": N, "textok": folder,
    "baseline": folder}``, or None."""
    textok, baseline = shipped_checkpoints(root)
    by_n = [{_num_tokens(p): p for p in paths} for paths in (textok, baseline)]
    common = sorted(set(by_n[0]) & set(by_n[1]) - {0})
    return {"num_tokens": common[-1], "textok": by_n[0][common[-1]], "baseline": by_n[1][common[-1]]} if common else None


def read_source(folder: str | os.PathLike) -> dict:
    """A shipped folder's ``SOURCE.json`` (where the weights came from: run, step, recipe, scores), or {}."""
    source = Path(folder) / "SOURCE.json"
    return json.loads(source.read_text(encoding="utf-8")) if source.is_file() else {}


__all__ = ["PRETRAINED_DIR", "EMOJI_SPLITS", "split_label", "path", "shipped_checkpoints", "find_pair", "read_source"]
