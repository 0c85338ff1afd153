"""The caption-swap rules of a tokenizer evaluation: which caption each image is decoded with when it is not the
one it was encoded with (``evaluate_tokenizer(decode_captions=...)``): how much the detokenizer relies on the
caption."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

from .reference import iterate_batches, subset_indices

DECODE_RULES = ("same-class", "same-class-random", "same-class-cycle", "other-class")
CYCLE_CANDIDATES = 16  # "same-class-cycle": the most captions of the class tried per image


def _captions_and_labels(dataset, num: int | None) -> list[tuple[str, int]]:
    """(caption, label) of the items ``iterate_batches(dataset, num, ...)`` yields, read without the images
    where the dataset can (``eval_caption``)."""
    if hasattr(dataset, "eval_caption") and hasattr(dataset, "records"):
        return [(dataset.eval_caption(i), dataset.records[i].label) for i in subset_indices(len(dataset), num)]
    return [(c, int(y)) for batch in iterate_batches(dataset, num, 64) for c, y in zip(batch["captions"], batch["labels"])]


def decode_caption_map(dataset, num: int | None = None, rule: str = "same-class",
                       seed: int = 0) -> dict[str, str] | dict[str, list[str]]:
    """Which caption each evaluated caption is swapped for at decoding (``evaluate_tokenizer(decode_captions=)``),
    built from the evaluated items themselves so that every swapped caption is one the split holds.

    ``"same-class"``: the next distinct caption of the same label (sorted, cyclic: neighbours in sort order
    often share words, so this is a mild swap); ``"same-class-random"``: another distinct caption of the
    label drawn at random (``seed``; what a class-conditional pipeline's random draw from a pool does);
    ``"same-class-cycle"``: up to ``CYCLE_CANDIDATES`` other captions of the label (drawn with ``seed``), of
    which the evaluation decodes each image with the one that best explains its tokens
    (``CaptionedTokenizer.choose_captions``; the pipeline's ``caption_choice="cycle"``). A label with a single
    distinct caption keeps it (no swap: the report counts the swapped images). ``"other-class"``: a caption
    of the label half-way round the sorted distinct labels (the same rank within that label, cyclic).
    Returns {caption: caption}, or for ``"same-class-cycle"`` {caption: [candidate captions]}."""
    if rule not in DECODE_RULES:
        raise ValueError(f"decode_captions: unknown rule {rule!r}; use one of {DECODE_RULES} or a JSON file / dict")
    by_label: dict[int, list[str]] = {}
    for caption, label in _captions_and_labels(dataset, num):
        by_label.setdefault(label, [])
        if caption not in by_label[label]:
            by_label[label].append(caption)
    by_label = {y: sorted(c) for y, c in by_label.items()}
    labels = sorted(by_label)
    if rule == "other-class" and len(labels) < 2:
        raise ValueError(f"decode_captions='other-class' needs at least two classes among the evaluated images, "
                         f"found {len(labels)} (a data set without labels has one)")
    out: dict = {}
    rng = random.Random(seed)
    for i, y in enumerate(labels):
        caps = by_label[y]
        for k, caption in enumerate(caps):
            others = [c for c in caps if c != caption] or [caption]
            if rule == "same-class":
                out[caption] = caps[(k + 1) % len(caps)]
            elif rule == "same-class-random":
                out[caption] = others[rng.randrange(len(others))]
            elif rule == "same-class-cycle":
                out[caption] = others if len(others) <= CYCLE_CANDIDATES else rng.sample(others, CYCLE_CANDIDATES)
            else:
                other = by_label[labels[(i + len(labels) // 2) % len(labels)]]
                out[caption] = other[k % len(other)]
    return out


def decode_map(decode_captions, dataset, num: int | None) -> dict | None:
    """``evaluate_tokenizer``'s ``decode_captions`` (None, a rule, a JSON file or a mapping) as a dict:
    caption -> caption, or caption -> candidate captions (each image gets the one that best explains it)."""
    if decode_captions is None:
        return None
    if isinstance(decode_captions, str) and decode_captions in DECODE_RULES:
        return decode_caption_map(dataset, num, decode_captions)
    if isinstance(decode_captions, (str, os.PathLike)):
        path = Path(decode_captions)
        if not path.is_file():
            raise ValueError(f"decode_captions: {path} is neither a rule {DECODE_RULES} nor an existing JSON file")
        try:
            mapping = json.loads(path.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"decode_captions: {path} is not valid JSON ({e})") from None
    else:
        mapping = decode_captions
    def ok(v) -> bool:
        return isinstance(v, str) or (isinstance(v, list) and bool(v) and all(isinstance(c, str) for c in v))

    if not isinstance(mapping, dict) or not all(isinstance(k, str) and ok(v) for k, v in mapping.items()):
        raise ValueError(f"decode_captions: {decode_captions} must map captions to a caption or a non-empty list of "
                         f"candidate captions (a JSON object)")
    return dict(mapping)


__all__ = ["DECODE_RULES", "CYCLE_CANDIDATES", "decode_caption_map", "decode_map"]
