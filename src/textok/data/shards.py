"""WebDataset tar shards: a writer from any folder dataset, and a streaming reader.

Layout: ``root/<split>-000000.tar``, ``root/<split>-000001.tar``, ... plus ``root/shards.json``
(splits -> shard names and sample counts) and the source's ``manifest.json``. Each sample is
three tar members sharing a key (the WebDataset convention, so ``webdataset.WebDataset`` reads
them too): ``<n>.png`` (or .jpg, the original bytes), ``<n>.txt`` (the caption) and
``<n>.json`` (``{"key", "caption", "label", "class", "captions"}``).

``ShardDataset`` streams a split, split by node (``torch.distributed`` rank / world size) and by
``DataLoader`` worker, so every sample is read exactly once per epoch across all consumers:
whole shards are dealt out when there are at least as many shards as consumers, otherwise
every consumer reads every shard and keeps every N-th sample.
"""

from __future__ import annotations

import io
import json
import logging
import os
import random
import tarfile
import zlib
from pathlib import Path

import torch

from .captions import caption_variant
from .transforms import ImageError, decode_image, prepare_image

log = logging.getLogger(__name__)

SHARDS_FILE = "shards.json"


def _add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0  # reproducible shards
    tar.addfile(info, io.BytesIO(data))


def write_shards(src: str | os.PathLike, dst: str | os.PathLike, splits: list[str] | None = None,
                 samples_per_shard: int = 1000, on_bad_sample: str = "skip") -> dict:
    """Convert a folder / class-tree dataset into shards; returns the ``shards.json`` content.

    Every image is decoded once to check it (bad samples are skipped and reported, or stop the
    run with ``on_bad_sample="error"``); the original file bytes are stored.
    """
    from ..io import atomic_path, write_json_atomic
    from .datasets import MANIFEST_FILE, BadSampleError, detect_format, list_splits, open_dataset
    from .transforms import load_image

    src, dst = Path(src).expanduser(), Path(dst).expanduser()
    if detect_format(src) == "shards":
        raise ValueError(f"{src} is already in shard format")
    if samples_per_shard < 1:
        raise ValueError(f"samples_per_shard must be >= 1, got {samples_per_shard}")
    dst.mkdir(parents=True, exist_ok=True)
    index = {"format": "webdataset", "source": str(src), "splits": {}}
    reports = {}
    for split in splits or list_splits(src):
        dataset = open_dataset(src, split, on_bad_sample=on_bad_sample)
        report = dataset.report
        names, count, counts = [], 0, []
        records = [r for r in dataset.records]
        for start in range(0, len(records), samples_per_shard):
            name = f"{split}-{len(names):06d}.tar"
            before = count
            with atomic_path(dst / name) as tmp, tarfile.open(tmp, "w") as tar:
                for n, record in enumerate(records[start : start + samples_per_shard], start=start):
                    try:
                        load_image(record.path)
                    except ImageError as e:
                        if on_bad_sample == "error":
                            raise BadSampleError(str(e)) from None
                        report.add(record.key, str(e).split(": ", 1)[-1])
                        continue
                    base = f"{n:09d}"
                    caption = record.captions[zlib.crc32(record.key.encode()) % len(record.captions)]
                    meta = {"key": record.key, "caption": caption, "label": record.label, "class": record.class_name}
                    if len(record.captions) > 1:
                        meta["captions"] = list(record.captions)
                    _add_member(tar, f"{base}{record.path.suffix.lower()}", record.path.read_bytes())
                    _add_member(tar, f"{base}.txt", caption.encode("utf-8"))
                    _add_member(tar, f"{base}.json", json.dumps(meta, ensure_ascii=False).encode("utf-8"))
                    count += 1
            names.append(name)
            counts.append(count - before)
        # per-shard counts: a training stream sizes its epochs from them (textok.data.stream)
        index["splits"][split] = {"shards": names, "num_samples": count, "counts": counts}
        reports[split] = report
    manifest = src / MANIFEST_FILE
    if manifest.is_file():
        (dst / MANIFEST_FILE).write_bytes(manifest.read_bytes())
    write_json_atomic(dst / SHARDS_FILE, index)
    index["reports"] = reports
    return index


def shard_splits(root: Path) -> list[str]:
    index = Path(root) / SHARDS_FILE
    if index.is_file():
        return sorted(json.loads(index.read_text())["splits"])
    return sorted({p.name.rsplit("-", 1)[0] for p in Path(root).glob("*.tar")})


def shard_files(root: Path, split: str) -> list[Path]:
    root = Path(root)
    if root.is_file():
        return [root]
    index = root / SHARDS_FILE
    if index.is_file():
        splits = json.loads(index.read_text())["splits"]
        if split not in splits:
            raise ValueError(f"{index}: no split {split!r} (splits: {sorted(splits)})")
        return [root / name for name in splits[split]["shards"]]
    files = sorted(root.glob(f"{split}-*.tar"))
    if not files:
        raise ValueError(f"{root}: no shards for split {split!r} (expected {split}-000000.tar ...)")
    return files


def consumer_rank() -> tuple[int, int]:
    """``(id, count)`` of this reader among all nodes' DataLoader workers."""
    rank, world = 0, 1
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
    info = torch.utils.data.get_worker_info()
    worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
    return rank * workers + worker, world * workers


def iter_tar_samples(path: Path):
    """Yield dicts ``{"__key__", ext: bytes, ...}`` grouping consecutive members by key."""
    current: dict | None = None
    with tarfile.open(path, "r") as tar:
        for member in tar:
            if not member.isfile():
                continue
            name = member.name
            base, _, ext = os.path.basename(name).partition(".")
            key = os.path.join(os.path.dirname(name), base)
            if current is None or current["__key__"] != key:
                if current is not None:
                    yield current
                current = {"__key__": key, "__shard__": path.name}
            current[ext.lower()] = tar.extractfile(member).read()
    if current is not None:
        yield current


class ShardDataset(torch.utils.data.IterableDataset):
    """Streams one split of a shard dataset; items as ``open_dataset``'s.

    ``len(dataset)`` is the split's total sample count (all nodes together). Call
    ``set_epoch(e)`` each epoch for a new shard order when ``train=True``.
    """

    IMAGE_EXTS = ("png", "jpg", "jpeg", "webp", "bmp", "gif", "tif", "tiff", "ppm")

    def __init__(self, root: str | os.PathLike, split: str = "train", image_size: int = 64, train: bool = False,
                 on_bad_sample: str = "skip", flip: bool = False, seed: int = 0, caption_variant: str = "full",
                 min_image_size: int | None = None, shuffle_buffer: int = 256):
        from .datasets import BadSampleReport, set_sample_options

        set_sample_options(self, image_size, train, on_bad_sample, flip, seed, caption_variant, min_image_size)
        self.root = Path(root)
        self.split = split
        self.shards = shard_files(self.root, split)
        self.shuffle_buffer = shuffle_buffer
        self.epoch = 0
        self.report = BadSampleReport(where=f"{self.root} [{split}]")
        index = self.root / SHARDS_FILE if self.root.is_dir() else None
        self.num_samples = (json.loads(index.read_text())["splits"][split]["num_samples"]
                            if index is not None and index.is_file() else None)

    def __len__(self) -> int:
        if self.num_samples is None:
            raise TypeError(f"{self.root}: no {SHARDS_FILE}, so the number of samples is unknown")
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _decode(self, sample: dict, rng: random.Random) -> dict:
        name = f"{sample['__shard__']}:{sample['__key__']}"
        meta = {}
        if "json" in sample:
            try:
                meta = json.loads(sample["json"].decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                raise ImageError(f"{name}: metadata is not UTF-8 JSON ({e})") from None
        caption = meta.get("caption")
        if "txt" in sample:
            try:
                caption = sample["txt"].decode("utf-8")
            except UnicodeDecodeError:
                raise ImageError(f"{name}: caption is not UTF-8") from None
        captions = meta.get("captions") or [caption]
        if self.train and len(captions) > 1:
            caption = captions[rng.randrange(len(captions))]
        if not isinstance(caption, str) or not caption.strip():
            raise ImageError(f"{name}: missing or empty caption")
        ext = next((e for e in self.IMAGE_EXTS if e in sample), None)
        if ext is None:
            raise ImageError(f"{name}: no image member (members: {sorted(k for k in sample if not k.startswith('__'))})")
        image = prepare_image(decode_image(sample[ext], name), self.image_size, name, train=self.train, rng=rng,
                              flip=self.flip, min_size=self.min_image_size)
        return {"image": image, "caption": caption_variant(caption, self.caption_variant, meta.get("class")),
                "label": int(meta.get("label", -1)), "key": meta.get("key", name)}

    def __iter__(self):
        from .datasets import BadSampleError

        consumer, consumers = consumer_rank()
        shards = list(self.shards)
        if self.train:  # same order on every consumer, so the split below stays a partition
            random.Random(self.seed * 1_000_003 + self.epoch).shuffle(shards)
        by_shard = len(shards) >= consumers
        mine = shards[consumer::consumers] if by_shard else shards
        rng = random.Random((self.seed * 1_000_003 + self.epoch) * 1009 + consumer)
        buffer: list[dict] = []
        n = -1
        for shard in mine:
            for sample in iter_tar_samples(shard):
                n += 1
                if not by_shard and n % consumers != consumer:
                    continue
                try:
                    item = self._decode(sample, rng)
                except ImageError as e:
                    name, reason = str(e).split(": ", 1)
                    if self.on_bad_sample == "error":
                        raise BadSampleError(str(e)) from None
                    log.warning("skipping bad sample %s: %s", name, reason)
                    self.report.add(name, reason)
                    continue
                if not self.train or self.shuffle_buffer <= 1:
                    yield item
                    continue
                buffer.append(item)
                if len(buffer) >= self.shuffle_buffer:
                    yield buffer.pop(rng.randrange(len(buffer)))
        rng.shuffle(buffer)
        yield from buffer
