"""The models shipped with the package, and the emoji splits they are scored on.

This folder is package data as well as a module: ``<name>-textok-n<N>`` and ``<name>-baseline-n<N>`` are
a TexTok and its no-text baseline (``config.json`` + float16 ``model.safetensors``, a ``SOURCE.json``
saying which study run and step they come from, a README); ``<name>-<arm>-n<N>-dit``, where shipped, is the
text-to-image DiT trained on that tokenizer's tokens (a generation folder, ``textok.generation.Pipeline``:
``generation.json`` naming the tokenizer beside it, ``dit/``); ``<name>-<split>-inception.npz`` holds the
Inception features of a split's originals, so ``textok demo`` can skip that pass. Two pairs ship:
``scenes32`` (the procedural scenes, ``textok demo``) and ``emoji32`` (``textok demo emoji``).

    from textok import CaptionedTokenizer, pretrained
    tok = CaptionedTokenizer.from_pretrained(pretrained.path("scenes32-textok-n1"))
    pair = pretrained.find_pair(name="scenes32")        # {"name", "num_tokens", "textok", "baseline"}
    dit = pretrained.dit_for(pair["textok"])             # its DiT folder, or None
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

#: the pair ``find_pair`` returns when no name is given (``textok demo``'s)
DEFAULT_PAIR = "scenes32"
#: the suffix of a tokenizer folder's DiT: ``<name>-<arm>-n<N>`` + ``DIT_SUFFIX``
DIT_SUFFIX = "-dit"

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
    sorted by N. Empty lists if there are none. A DiT folder (``...-n<N>-dit``) is not a tokenizer."""
    root = Path(root) if root is not None else PRETRAINED_DIR
    found = {}
    for arm in ("textok", "baseline"):
        dirs = [p for p in root.glob(f"{prefix}-{arm}-n*") if _num_tokens(p) and (p / "config.json").is_file()] \
            if root.is_dir() else []
        found[arm] = sorted(dirs, key=lambda p: (_num_tokens(p), p.name))
    return found["textok"], found["baseline"]


def pair_names(root: str | os.PathLike | None = None) -> list[str]:
    """The names of the shipped pairs (``<name>`` with both ``<name>-textok-n<N>`` and ``<name>-baseline-n<N>`` at
    some N), sorted."""
    textok, baseline = shipped_checkpoints(root)
    key = lambda p: (p.name.rsplit("-", 2)[0], _num_tokens(p))  # noqa: E731
    return sorted({name for name, _ in {key(p) for p in textok} & {key(p) for p in baseline}})


def find_pair(root: str | os.PathLike | None = None, name: str | None = None) -> dict | None:
    """The shipped TexTok and baseline of the pair ``name`` (``"scenes32"``, ``"emoji32"``; default
    ``DEFAULT_PAIR`` when shipped, else the first of ``pair_names``) at the largest N both exist for:
    ``{"num_tokens": N, "textok": folder, "baseline": folder}``, or None. ``dit_for`` finds each one's DiT."""
    names = pair_names(root)
    if name is None:
        name = DEFAULT_PAIR if DEFAULT_PAIR in names else (names[0] if names else None)
    if name is None or any(c in name for c in "*?["):
        return None
    textok, baseline = shipped_checkpoints(root, prefix=name)
    by_n = [{_num_tokens(p): p for p in paths} for paths in (textok, baseline)]
    common = sorted(set(by_n[0]) & set(by_n[1]))
    if not common:
        return None
    return {"num_tokens": common[-1], "textok": by_n[0][common[-1]], "baseline": by_n[1][common[-1]]}


def dit_for(tokenizer_folder: str | os.PathLike) -> Path | None:
    """The shipped DiT that generates ``tokenizer_folder``'s tokens (``<folder>-dit`` beside it, a generation folder
    with ``generation.json``: ``textok.generation.Pipeline.from_pretrained`` loads it), or None."""
    folder = Path(tokenizer_folder)
    dit = folder.with_name(folder.name + DIT_SUFFIX)
    return dit if (dit / "generation.json").is_file() else None


def read_source(folder: str | os.PathLike) -> dict:
    """A shipped folder's ``SOURCE.json`` (where the weights came from: run, step, recipe, scores), or {}."""
    source = Path(folder) / "SOURCE.json"
    return json.loads(source.read_text(encoding="utf-8")) if source.is_file() else {}


__all__ = ["PRETRAINED_DIR", "DEFAULT_PAIR", "DIT_SUFFIX", "EMOJI_SPLITS", "split_label", "path", "shipped_checkpoints",
           "pair_names", "find_pair", "dit_for", "read_source"]
