"""Writing WebDataset tar shards from a folder / class-tree data set (``textok data shards``).

The layout (``textok.data.shards``): ``dst/<split>-000000.tar`` ... plus ``dst/shards.json``
(splits -> shard names, per-shard and total sample counts) and the source's ``manifest.json``.
Each sample is three tar members sharing a key: ``<n>.png`` (or .jpg: the original bytes),
``<n>.txt`` (the caption) and ``<n>.json`` (``{"key", "caption", "label", "class", "captions"}``).
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import zlib
from pathlib import Path

from ..io import atomic_path, write_json_atomic
from .datasets import list_splits, open_dataset
from .formats import MANIFEST_FILE, SHARDS_FILE, detect_format
from .transforms import ImageError, load_image


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
                        report.handle(record.key, e.reason, on_bad_sample, shown=e.name, warn=False)
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


__all__ = ["write_shards"]
