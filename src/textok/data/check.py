"""``check_dataset(root)``: validate a data set in any format without training.

Indexes every split, decodes every image (and every shard sample) and returns one
``BadSampleReport`` per split: counts, and each bad file with its reason.
"""

from __future__ import annotations

import os
from pathlib import Path

from .datasets import ImageCaptionDataset, list_splits, open_dataset
from .formats import BadSampleReport, detect_format
from .transforms import ImageError


def check_dataset(root: str | os.PathLike, image_size: int = 64, splits: list[str] | None = None,
                  min_image_size: int | None = None) -> dict[str, BadSampleReport]:
    """Decode everything in ``root``; ``{split: report}``. Raises only if ``root`` is not a
    dataset at all (``FileNotFoundError`` / ``ValueError``)."""
    root = Path(root).expanduser()
    detect_format(root)
    available = list_splits(root)
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
