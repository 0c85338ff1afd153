"""Image-caption datasets in three on-disk formats, one loader: ``open_dataset(root, split)``.

Formats (detected from what ``root`` holds):

- **folder**: images anywhere below ``root`` plus ``root/captions.jsonl``, one JSON object per
  line: ``{"file": "rel/path.png", "caption": "...", "label": 3, "split": "val", ...}``.
  ``file`` and ``caption`` are required; ``label`` (int, default -1), ``class`` (class name, for
  the caption variants) and ``split`` (default ``"train"``) are optional; other fields
  (licence, style, ...) are kept as metadata and ignored by the loader.
- **class tree** (ImageNet layout): ``root/<split>/<class>/<image>`` (or ``root/<class>/...``
  for a single ``train`` split). Captions come from ``root/class_captions.json``
  (class -> list of captions; one is drawn per image, at random when ``train=True``, else a
  fixed one per file); without that file the caption is ``"a photo of a {class}"``.
  ``root/class_captions_heldout.json`` (same layout) holds captions never used in training,
  for drawing unseen captions at generation time (``load_caption_pool``).
- **shards**: WebDataset tars ``root/<split>-000000.tar`` ... (see ``textok.data.shards``).

``root/manifest.json`` is optional; the loader reads ``classes`` (label order) and
``min_image_size`` from it.

Items are dicts ``{"image": float32 [3, S, S] in [-1, 1], "caption": str, "label": int,
"key": str}``; ``collate`` stacks them. Bad samples (unreadable, truncated or empty images,
non-image files, decompression bombs, images smaller than the crop, missing or empty captions,
non-UTF-8 caption lines, duplicate entries) are skipped and counted in ``dataset.report``
(``on_bad_sample="skip"``) or raise ``BadSampleError`` naming the file and the reason
(``on_bad_sample="error"``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import random
import zlib
from pathlib import Path
from typing import Mapping, Sequence

import torch

from .captions import caption_variant, is_field_variant
from .formats import (CAPTIONS_FILE, CLASS_CAPTIONS_FILE, HELDOUT_CAPTIONS_FILE, IMAGE_EXTENSIONS, MANIFEST_FILE,
                      ON_BAD_SAMPLE, RESERVED_DIRS, BadSampleError, BadSampleReport, check_on_bad_sample,
                      detect_format, is_class_dir, json_lines, read_caption_pool, read_manifest, set_sample_options)
from .shards import ShardDataset, shard_splits
from .transforms import ImageError, load_image, prepare_image

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Record:
    """One indexed sample: the image file, its candidate captions (one, or a class's pool)."""

    path: Path
    key: str
    captions: tuple[str, ...]
    label: int = -1
    class_name: str | None = None
    variants: Mapping[str, str] | None = None  # field variants: {"shapes": ...} from a caption_shapes field


def _safe_relpath(root: Path, rel: str) -> Path | None:
    """``root / rel`` if it stays inside ``root`` by every route: no absolute path, no ``..``, and
    no symbolic link on the way that points outside (a link is followed to see where it lands)."""
    if os.path.isabs(rel) or ".." in Path(rel).parts:
        return None
    path = root / rel
    return path if _inside(root, path) else None


def _inside(root: Path, path: Path) -> bool:
    """``path`` resolved (links followed) lies in ``root`` resolved."""
    try:
        return Path(os.path.realpath(path)).is_relative_to(os.path.realpath(root))
    except (OSError, ValueError):
        return False


def _check_file(path: Path) -> str | None:
    """Cheap checks done while indexing (no decoding): the reason a file is bad, or None."""
    try:
        if not path.is_file():
            return "listed but not found" if not path.exists() else "not a regular file"
        size = path.stat().st_size
    except OSError as e:  # e.g. a file name longer than the file system allows
        return f"cannot be read ({e.strerror or e})"
    if path.suffix.lower() not in IMAGE_EXTENSIONS:
        return f"not an image file (extension {path.suffix or 'none'!r})"
    if size == 0:
        return "empty file (0 bytes)"
    return None


def _owner_split(splits: set[str]) -> str | None:
    """The split that reports the lines that name no usable split (unreadable lines, a bad
    ``split`` value): ``train`` if there is one, else the first by name; so each is counted once
    however many splits are opened."""
    return "train" if "train" in splits or not splits else min(splits)


def index_folder(root: Path, split: str, report: BadSampleReport, classes: Sequence[str] = ()) -> list[Record]:
    """Index the folder format: ``root/captions.jsonl`` entries of ``split``.

    An image listed twice is a bad entry at its second line, in that line's split: a duplicate
    within a split, or the same file in two splits (an evaluation image that is also trained on)."""
    path = root / CAPTIONS_FILE
    class_index = {c: i for i, c in enumerate(classes)}
    records, first, splits = [], {}, set()
    unattributed = BadSampleReport()  # lines without a usable split: reported by one split only
    for n, obj in json_lines(path, unattributed):
        entry_split = obj.get("split", "train")
        if not isinstance(entry_split, str):  # a bad entry, not a crash of every command
            unattributed.total += 1
            unattributed.add(f"{CAPTIONS_FILE}:{n}", f"'split' must be a string, got {json.dumps(entry_split)}")
            continue
        splits.add(entry_split)
        rel = obj.get("file")
        earlier = first.get(rel) if isinstance(rel, str) and rel else None
        if earlier is None and isinstance(rel, str) and rel:
            first[rel] = (n, entry_split)
        if entry_split != split:
            continue
        report.total += 1
        where = f"{CAPTIONS_FILE}:{n}" if not isinstance(rel, str) or not rel else rel
        if not isinstance(rel, str) or not rel:
            report.add(where, "entry has no 'file'")
            continue
        if earlier is not None:
            line, other = earlier
            report.add(f"{CAPTIONS_FILE}:{n}", f"duplicate entry for {rel} (first on line {line})" if other == split
                       else f"{rel} is also in split {other!r} (line {line}): an image in two splits")
            continue
        caption = obj.get("caption")
        if not isinstance(caption, str) or not caption.strip():
            report.add(rel, "missing or empty caption")
            continue
        file = _safe_relpath(root, rel)
        reason = "path leaves the dataset folder" if file is None else _check_file(file)
        if reason:
            report.add(rel, reason)
            continue
        label = obj.get("label", -1)
        class_name = obj.get("class")
        if class_name is not None and class_name in class_index and "label" not in obj:
            label = class_index[class_name]
        if not isinstance(label, int) or isinstance(label, bool):
            report.add(rel, f"label must be an integer, got {label!r}")
            continue
        variants = {k[len("caption_"):]: v for k, v in obj.items() if k.startswith("caption_") and isinstance(v, str)}
        records.append(Record(file, rel, (caption,), label, class_name, variants or None))
    if split == _owner_split(splits):
        report.total += unattributed.total
        for name, reason in unattributed.bad:
            report.add(name, reason)
    if not records and split not in splits and report.num_bad == 0:
        raise ValueError(f"{path}: no entries of split {split!r} (splits present: {sorted(splits) or 'none'})")
    return records


def load_caption_pool(root: str | os.PathLike, heldout: bool = False) -> dict[str, list[str]]:
    """A caption pool (class name -> captions): a pool file (JSON), or a class tree's; ``heldout=True``
    gives the tree's captions never used in training (for generation with unseen captions)."""
    path = Path(root)
    if not path.is_file():
        path = path / (HELDOUT_CAPTIONS_FILE if heldout else CLASS_CAPTIONS_FILE)
    if not path.is_file():
        raise FileNotFoundError(f"caption pool not found: {path}")
    return read_caption_pool(path)


def class_tree_split_dir(root: Path, split: str) -> Path:
    if (root / split).is_dir():
        return root / split
    if split == "train":
        return root
    raise ValueError(f"{root}: class tree has no split folder {split!r}")


def index_class_tree(root: Path, split: str, report: BadSampleReport, classes: Sequence[str] = ()) -> list[Record]:
    """Index ``root/<split>/<class>/*`` (or ``root/<class>/*`` for ``train``)."""
    split_dir = class_tree_split_dir(root, split)
    found = sorted(p.name for p in split_dir.iterdir() if is_class_dir(p))
    classes = list(classes) or found
    unknown = sorted(set(found) - set(classes))
    if unknown:
        raise ValueError(f"{split_dir}: class folders {unknown} are not in the manifest's classes")
    pool_path = root / CLASS_CAPTIONS_FILE
    pool = read_caption_pool(pool_path) if pool_path.is_file() else {}
    records = []
    for label, name in enumerate(classes):
        class_dir = split_dir / name
        if not class_dir.is_dir():
            continue
        captions = tuple(c for c in pool.get(name, []) if c.strip()) or (f"a photo of a {name.replace('_', ' ')}",)
        for file in sorted(p for p in class_dir.rglob("*") if not p.name.startswith(".") and not p.is_dir()):
            report.total += 1
            key = file.relative_to(root).as_posix()
            reason = _check_file(file) if _inside(root, file) else "path leaves the dataset folder (a link)"
            if reason:
                report.add(key, reason)
                continue
            records.append(Record(file, key, captions, label, name))
    return records


class ImageCaptionDataset(torch.utils.data.Dataset):
    """Map-style dataset over indexed ``Record``s (folder format and class trees).

    ``dataset[i]`` -> ``{"image": [3, S, S] float32 in [-1, 1], "caption": str, "label": int,
    "key": str}``. A sample that fails to decode is reported and replaced by the next usable one
    (``on_bad_sample="skip"``) or raises ``BadSampleError``.
    """

    def __init__(self, records: list[Record], report: BadSampleReport, image_size: int = 64, train: bool = False,
                 on_bad_sample: str = "skip", flip: bool = False, seed: int = 0, caption_variant: str = "full",
                 min_image_size: int | None = None, classes: Sequence[str] = ()):
        set_sample_options(self, image_size, train, on_bad_sample, flip, seed, caption_variant, min_image_size)
        self.records = records
        self.report = report
        self.classes = list(classes)
        self._rng = random.Random(seed)
        self._rng_owner: int | None = None  # worker seed the rng was derived from

    def __len__(self) -> int:
        return len(self.records)

    @property
    def captions(self) -> list[str]:
        """Every caption an item can carry (for precomputing text embeddings)."""
        seen = dict.fromkeys(self._caption(r, c) for r in self.records for c in r.captions)
        return list(seen)

    def _caption(self, record: Record, caption: str) -> str:
        return caption_variant(caption, self.caption_variant, record.class_name, record.variants)

    def reseed(self, seed: int) -> None:
        """Restart the augmentation stream (crops, flips, caption draws) from ``seed``; a trainer
        calls this per item so a resumed run sees the same augmentations."""
        self._rng = random.Random(seed)
        info = torch.utils.data.get_worker_info()
        self._rng_owner = info.seed if info is not None else None

    def _worker_rng(self) -> random.Random:
        # Each DataLoader worker (and each epoch: the base seed changes) gets its own stream.
        info = torch.utils.data.get_worker_info()
        if info is not None and self._rng_owner != info.seed:
            self._rng = random.Random(self.seed * 1_000_003 + info.seed)
            self._rng_owner = info.seed
        return self._rng

    def load(self, record: Record) -> dict:
        """Decode and transform one record; ``ImageError`` if it cannot be used."""
        rng = self._worker_rng() if self.train else None
        image = prepare_image(load_image(record.path), self.image_size, str(record.path), train=self.train, rng=rng,
                              flip=self.flip, min_size=self.min_image_size)
        if self.train:
            caption = self._caption(record, record.captions[rng.randrange(len(record.captions))])
        else:
            caption = self.eval_caption(index=None, record=record)
        return {"image": image, "caption": caption, "label": record.label, "key": record.key}

    def eval_caption(self, index: int | None, record: Record | None = None) -> str:
        """The caption item ``index`` carries in evaluation (``train=False``), read without decoding its
        image: one of its captions, fixed by its key."""
        record = self.records[index] if record is None else record
        return self._caption(record, record.captions[zlib.crc32(record.key.encode()) % len(record.captions)])

    def __getitem__(self, index: int) -> dict | None:
        """Item ``index``; ``None`` for a bad one with ``on_bad_sample="skip"`` (counted in
        ``report``). Never a neighbour instead: that would duplicate images in caches and FID
        statistics while the counts claimed every image was used. ``collate`` drops the ``None``s."""
        record = self.records[index]
        try:
            return self.load(record)
        except ImageError as e:
            if self.on_bad_sample == "error":
                raise BadSampleError(record.key, e.reason) from None
            self.report.handle(record.key, e.reason, self.on_bad_sample, shown=record.path)
            return None


def open_dataset(root: str | os.PathLike, split: str = "train", image_size: int = 64, train: bool = False,
                 on_bad_sample: str = "skip", flip: bool = False, seed: int = 0, caption_variant: str = "full",
                 min_image_size: int | None = None):
    """Open a dataset in any of the three formats (see the module docstring).

    Args:
        root: dataset folder (or a single ``.tar`` shard).
        split: ``"train"``, ``"val"``, ``"val_unseen"`` (emoji), ``"test"`` (Fashion-MNIST), ...
        image_size: output side S; ``train=True`` random-crops, else the ADM centre crop.
        on_bad_sample: ``"skip"`` (count in ``dataset.report``) or ``"error"``.
        flip: random horizontal flips when training (off by default: captions say "left").
        caption_variant: ``"full"`` (75 words), ``"words25"``, ``"short"`` ("a photo of a {class}")
            or ``"class"`` (class name only): the paper's condition-richness ablation.
        min_image_size: smallest usable short side (default ``image_size``, or the manifest's
            ``min_image_size``); smaller images are bad samples.
    Returns:
        ``ImageCaptionDataset`` (map-style) or ``ShardDataset`` (iterable) of item dicts.
    """
    check_on_bad_sample(on_bad_sample)
    root = Path(root).expanduser()
    fmt = detect_format(root)
    manifest = read_manifest(root if root.is_dir() else root.parent)
    classes = manifest.get("classes", [])
    if min_image_size is None:
        min_image_size = min(manifest.get("min_image_size", image_size), image_size)
    if fmt == "shards":
        return ShardDataset(root, split, image_size=image_size, train=train, on_bad_sample=on_bad_sample, flip=flip,
                            seed=seed, caption_variant=caption_variant, min_image_size=min_image_size)
    report = BadSampleReport(where=f"{root} [{split}]")
    index = index_folder if fmt == "folder" else index_class_tree
    records = index(root, split, report, classes)
    if report.bad and on_bad_sample == "error":
        name, reason = report.bad[0]
        raise BadSampleError(root / name, reason)
    if report.bad:
        log.warning("%s", report.summary(limit=10))
    if not records:
        raise ValueError(f"{root} [{split}]: no usable samples ({report.num_bad} bad)")
    if is_field_variant(caption_variant):
        missing = next((r for r in records if not (r.variants or {}).get(caption_variant)), None)
        if missing is not None:
            raise ValueError(f"{root}: caption variant {caption_variant!r} needs a 'caption_{caption_variant}' field "
                             f"in {CAPTIONS_FILE} for every sample; {missing.key} has none")
    if caption_variant in ("class", "short") and any(r.class_name is None for r in records):
        raise ValueError(f"{root}: caption variant {caption_variant!r} needs a class name per sample "
                         f"(a 'class' field in {CAPTIONS_FILE}, or a class tree)")
    return ImageCaptionDataset(records, report, image_size=image_size, train=train, on_bad_sample=on_bad_sample,
                               flip=flip, seed=seed, caption_variant=caption_variant,
                               min_image_size=min_image_size, classes=classes)


def collate(items: Sequence[dict | None]) -> dict | None:
    """Items -> ``{"images": [B, 3, S, S], "captions": list[str], "labels": LongTensor [B],
    "keys": list[str]}``. Skipped items (``None``) are dropped, so B may be smaller; ``None``
    if every item was skipped."""
    if not items:
        raise ValueError("cannot collate an empty batch")
    items = [it for it in items if it is not None]
    if not items:
        return None
    return {
        "images": torch.stack([it["image"] for it in items]),
        "captions": [it["caption"] for it in items],
        "labels": torch.tensor([it["label"] for it in items], dtype=torch.long),
        "keys": [it["key"] for it in items],
    }


def list_splits(root: str | os.PathLike) -> list[str]:
    """The splits a dataset folder holds."""
    root = Path(root)
    fmt = detect_format(root)
    if fmt == "folder":
        report = BadSampleReport()
        splits = (obj.get("split", "train") for _, obj in json_lines(root / CAPTIONS_FILE, report))
        return sorted({s for s in splits if isinstance(s, str)})  # bad ones are reported by index_folder
    if fmt == "shards":
        return shard_splits(root)
    subs = [p for p in root.iterdir() if is_class_dir(p)]
    named = [p.name for p in subs if p.name in ("train", "val", "test", "val_unseen")]
    return sorted(named) or ["train"]


__all__ = ["open_dataset", "collate", "ImageCaptionDataset", "Record", "list_splits", "load_caption_pool",
           "index_folder", "index_class_tree",
           # the format module's names, importable from here as before
           "BadSampleError", "BadSampleReport", "detect_format", "read_manifest", "CAPTIONS_FILE", "CLASS_CAPTIONS_FILE",
           "HELDOUT_CAPTIONS_FILE", "MANIFEST_FILE", "IMAGE_EXTENSIONS", "ON_BAD_SAMPLE", "RESERVED_DIRS"]
