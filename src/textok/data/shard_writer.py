"""Writing WebDataset tar shards from a folder / class-tree data set (``textok data shards``).

The layout (``textok.data.shards``): ``dst/<split>-000000.tar`` ... plus ``dst/shards.json``
(splits -> shard names, per-shard and total sample counts) and the source's ``manifest.json``.
Each sample is three tar members sharing a key: ``<n>.png`` (or .jpg: the original bytes),
``<n>.txt`` (the caption) and ``<n>.json`` (``{"key", "caption", "label", "class", "captions"}``).
"""

from __future__ import annotations

import glob
import io
import json
import os
import re
import tarfile
import zlib
from pathlib import Path

from ..io import atomic_path, remove_stale_temporaries, write_json_atomic
from .datasets import list_splits, open_dataset
from .formats import MANIFEST_FILE, SHARDS_FILE, detect_format
from .transforms import ImageError, load_image


def _add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0  # reproducible shards
    tar.addfile(info, io.BytesIO(data))


_SHARD_NAME = re.compile(r"^(?P<split>.+)-\d{6}\.tar$")


def _claim_folder(dst: Path, source: str) -> dict:
    """The ``shards.json`` of an earlier ``write_shards`` into ``dst`` ({} for a new or empty
    folder); a non-empty folder without one is the user's and is refused, never written into
    (the ``data fetch`` rule). A folder written from another source is refused too."""
    if not dst.exists():
        return {}
    if not dst.is_dir():
        raise NotADirectoryError(f"{dst}: exists and is not a folder")
    if not any(dst.iterdir()):
        return {}
    try:
        index = json.loads((dst / SHARDS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        index = None
    if not (isinstance(index, dict) and index.get("format") == "webdataset" and isinstance(index.get("splits"), dict)):
        raise ValueError(f"{dst}: folder is not empty and holds no {SHARDS_FILE} of `textok data shards`; refusing "
                         f"to write into it (give a new or empty folder)")
    if index.get("source") != source:
        raise ValueError(f"{dst}: holds shards of another source ({index.get('source')}, not {source}); give a new "
                         f"folder, or delete it to convert again")
    return index


def write_shards(src: str | os.PathLike, dst: str | os.PathLike, splits: list[str] | None = None,
                 samples_per_shard: int = 1000, on_bad_sample: str = "skip") -> dict:
    """Convert a folder / class-tree dataset into shards; returns the ``shards.json`` content.

    Every image is decoded once to check it (bad samples are skipped and reported, or stop the
    run with ``on_bad_sample="error"``); the original file bytes are stored. ``dst`` must be new,
    empty, or a folder this function wrote from the same ``src``; a rerun there replaces the
    splits it converts and deletes their shards that the new ones do not overwrite (a rerun with
    a larger ``samples_per_shard`` leaves no stale ``<split>-000005.tar``); other splits stay.
    """
    src, dst = Path(src).expanduser(), Path(dst).expanduser()
    if detect_format(src) == "shards":
        raise ValueError(f"{src} is already in shard format")
    if samples_per_shard < 1:
        raise ValueError(f"samples_per_shard must be >= 1, got {samples_per_shard}")
    source = str(src.resolve())
    old = _claim_folder(dst, source)
    todo = splits or list_splits(src)
    index = {"format": "webdataset", "source": source,
             "splits": {k: v for k, v in old.get("splits", {}).items() if k not in todo}}
    dst.mkdir(parents=True, exist_ok=True)
    # claimed before the first shard: a killed run leaves a folder a rerun recognises as its own, and
    # "writing" marks its splits unfinished, so no reader takes them for complete (textok.data.shards)
    write_json_atomic(dst / SHARDS_FILE, dict(index, writing=list(todo)))
    remove_stale_temporaries(dst)  # a killed run's .<split>-NNNNNN.tar.textok<PID>.*.tmp: the folder is ours
    reports = {}
    for split in todo:
        dataset = open_dataset(src, split, on_bad_sample=on_bad_sample)
        report = dataset.report
        names, count, counts, sizes = [], 0, [], []
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
            sizes.append((dst / name).stat().st_size)
        # per-shard counts: a training stream sizes its epochs from them (textok.data.stream); the sizes
        # tell a reader whether a count still belongs to the file
        index["splits"][split] = {"shards": names, "num_samples": count, "counts": counts, "bytes": sizes}
        reports[split] = report
        for stale in dst.glob(f"{glob.escape(split)}-*.tar"):  # ours by name: the folder was claimed above
            m = _SHARD_NAME.match(stale.name)
            if m and m["split"] == split and stale.name not in names:
                stale.unlink()
    manifest = src / MANIFEST_FILE
    if manifest.is_file():
        with atomic_path(dst / MANIFEST_FILE) as tmp:
            tmp.write_bytes(manifest.read_bytes())
    write_json_atomic(dst / SHARDS_FILE, index)
    index["reports"] = reports
    return index


__all__ = ["write_shards"]
