"""``check_dataset(root)``: validate a data set in any format without training.

Indexes every split, decodes every image (and every shard sample) and returns one
``BadSampleReport`` per split: counts, and each bad file with its reason.

``split_twins(root)``: per evaluation split, how many images share their caption (or base name) with a
``train`` image: a split full of such twins measures recall, not generalisation (docs/data.md, "Twins").
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from .datasets import ImageCaptionDataset, list_splits, open_dataset
from .formats import CAPTIONS_FILE, BadSampleReport, detect_format, json_lines
from .shards import iter_tar_samples, shard_files
from .transforms import ImageError


def check_dataset(root: str | os.PathLike, image_size: int = 64, splits: list[str] | None = None,
                  min_image_size: int | None = None) -> dict[str, BadSampleReport]:
    """Decode everything in ``root``; ``{split: report}``. Raises only if ``root`` is not a
    dataset at all (``FileNotFoundError`` / ``ValueError``)."""
    root = Path(root).expanduser()
    detect_format(root)
    available = list_splits(root)
    if not available:  # "OK: 0 entries checked" would call a folder with nothing to train on fine
        raise ValueError(f"{root}: holds no split to check (an empty or unfinished data set)")
    unknown = [s for s in splits or [] if s not in available]
    if unknown:
        raise ValueError(f"--split {unknown[0]}: {root} has no such split (splits: {', '.join(available) or 'none'})")
    reports = {}
    for split in splits or available:
        try:
            ds = open_dataset(root, split, image_size=image_size, on_bad_sample="skip", min_image_size=min_image_size)
        except ValueError as e:  # e.g. every entry of the split is bad
            report = BadSampleReport(where=f"{root} [{split}]", total=1)
            report.add(split, str(e))
            reports[split] = report
            continue
        if isinstance(ds, ImageCaptionDataset):
            for record in ds.records:
                try:
                    ds.load(record)
                except ImageError as e:
                    ds.report.add(record.key, e.reason)
        else:  # shards: iterate once; bad samples are counted by the reader
            good = sum(1 for _ in ds)
            ds.report.total = good + ds.report.num_bad
        reports[split] = ds.report
    return reports


# ---- twins: evaluation images that are other renderings of training images ------------------------
# A held-out split measures generalisation only if its images are new (docs/data.md, "Twins"). An image
# whose caption a training image carries, or which renders the same base item (the emoji in another
# style or skin tone), tests recall: a detokenizer that reads the caption can reproduce the training
# image from it. Above this share the check warns (10%: a few coincidental caption repeats, e.g.
# "a photo of a cat" in a per-image captioned set, stay below it; a split built from renderings does not).
TWIN_WARN_FRACTION = 0.10
# Fields of captions.jsonl (or of a shard sample's .json) that name the item an image renders, in the
# order looked up; a data set without one gets the caption count only.
BASE_FIELDS = ("base", "source")


@dataclasses.dataclass
class SplitTwins:
    """One evaluation split against ``train``: how many of its images share a caption / a base name
    with a training image. ``None`` where the data set cannot say (captions drawn per class, no base field)."""

    split: str
    num_images: int
    caption_twins: int | None
    base_twins: int | None = None
    base_field: str | None = None
    note: str = ""

    def share(self, count: int | None) -> float | None:
        return None if count is None or not self.num_images else count / self.num_images

    @property
    def measures(self) -> str:
        """``"recall"`` above the warning share (the split re-shows training items), else ``"new"``."""
        return "recall" if self.warn else "new"

    @property
    def warn(self) -> bool:
        return any((s or 0) > TWIN_WARN_FRACTION for s in (self.share(self.caption_twins), self.share(self.base_twins)))

    def summary(self) -> str:
        def part(count, what):
            return f"{count} of {self.num_images} ({100 * self.share(count):.1f}%) {what}"

        parts = [part(self.caption_twins, "share their caption with a train image") if self.caption_twins is not None
                 else "caption twins not counted"]
        if self.base_twins is not None:
            parts.append(part(self.base_twins, f"share their '{self.base_field}' with a train image"))
        line = f"{self.split}: " + "; ".join(parts) + (f" ({self.note})" if self.note else "")
        if self.warn:
            line += (f"\n  WARNING: above {100 * TWIN_WARN_FRACTION:.0f}%: '{self.split}' is largely twins of training "
                     "images (same caption or base name), so it measures recall of seen items, not new images")
        return line


def _split_entries(root: Path) -> dict[str, list[tuple[str, str | None, str | None]]] | None:
    """``{split: [(caption, base name or None, its field), ...]}`` read without decoding images; None for a class tree
    (its captions are drawn per class, so an image has no caption of its own)."""
    fmt = detect_format(root)
    out: dict[str, list] = {}
    if fmt == "class-tree":
        return None
    if fmt == "folder":
        objs = (obj for _, obj in json_lines(root / CAPTIONS_FILE, BadSampleReport()))
    else:  # shards: each sample's .json (the writer keeps the caption there) or its .txt
        def shard_objs():
            for split in list_splits(root):
                for path in shard_files(root, split):
                    for s in iter_tar_samples(path, lambda reason: None):  # damage: reported by check_dataset
                        obj = json.loads(s["json"]) if "json" in s else {}
                        obj.setdefault("caption", s.get("txt", b"").decode("utf-8", "replace"))
                        yield dict(obj, split=split)
        objs = shard_objs()
    for obj in objs:
        caption, split = obj.get("caption"), obj.get("split", "train")
        if isinstance(caption, str) and isinstance(split, str):
            field = next((f for f in BASE_FIELDS if obj.get(f) is not None), None)
            out.setdefault(split, []).append((caption.strip(), field and str(obj[field]), field))
    return out


def split_twins(root: str | os.PathLike, splits: list[str] | None = None) -> dict[str, SplitTwins]:
    """For each evaluation split (every split but ``train``, or ``splits``): how many of its images share
    their caption with a ``train`` image and, where captions.jsonl names one (``BASE_FIELDS``), their
    base name. Empty when there is no ``train`` split to compare with."""
    root = Path(root).expanduser()
    entries = _split_entries(root)
    if entries is None:  # a class tree: every image of a class carries the class's captions, by design
        return {s: SplitTwins(s, 0, None, note="class tree: captions are drawn per class, as ImageNet's val "
                              "shares its class names with train; no per-image twins to count")
                for s in (splits or list_splits(root)) if s != "train"}
    train = entries.get("train")
    if not train:
        return {}
    captions = {c for c, _, _ in train}
    bases = {b for _, b, _ in train if b is not None}
    field = next((f for _, b, f in train if b is not None), None)
    out = {}
    for split in splits or sorted(entries):
        if split == "train" or split not in entries:
            continue
        rows = entries[split]
        out[split] = SplitTwins(split, len(rows), sum(c in captions for c, _, _ in rows),
                                sum(b in bases for _, b, _ in rows) if bases else None, field)
    return out
