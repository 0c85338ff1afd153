"""A small image-caption data set held in memory: decoded once, batched by indexing.

``InMemoryDataset(dataset)`` reads every item of a map-style data set once (``open_dataset``'s
folders and class trees) and keeps the images as one uint8 tensor [N, 3, S, S] (float32 where
uint8 would not give back the decoded values exactly), the captions, labels and keys as lists.
``batch(indices)`` returns what ``collate([dataset[i] for i in indices])`` returns, without
decoding a file or starting a worker: a training step on 32 px images then costs no data time.
Bad samples are found once, counted in the source's report, and dropped from the batches that
name them, as the file loader drops them.

Only for data sets whose items do not change between reads (no random crops, flips or caption
draws: ``train=False``), and that fit in memory: 25,000 scenes at 32 px are 77 MB.
"""

from __future__ import annotations

import logging
import os
from typing import Sequence

import torch
from tqdm.auto import tqdm

log = logging.getLogger(__name__)

#: refuse to hold more than this fraction of the machine's memory
MAX_MEMORY_FRACTION = 0.5


def _machine_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


class InMemoryDataset(torch.utils.data.Dataset):
    """``dataset`` decoded once. ``ds[i]`` -> the source's item ``i`` (or ``None`` for a bad one);
    ``ds.batch(indices)`` -> ``{"images": [B, 3, S, S] float32, "captions", "labels": [B], "keys"}``."""

    def __init__(self, dataset, progress: bool = True, where: str = "data"):
        inner = dataset
        while isinstance(inner, torch.utils.data.Subset):
            inner = inner.dataset
        if getattr(inner, "train", False):
            raise ValueError(f"{where}: data.in_memory needs items that are the same at every read (train=False: no "
                             f"random crops, flips or caption draws)")
        n = len(dataset)
        self.source = dataset
        self.report = getattr(dataset, "report", None)
        self.valid = torch.zeros(n, dtype=torch.bool)
        self.captions: list[str | None] = [None] * n
        self.labels = torch.full((n,), -1, dtype=torch.long)
        self.keys: list[str | None] = [None] * n
        images, floats, exact = None, None, True
        for i in tqdm(range(n), desc="in memory", unit="img", disable=not progress, leave=False):
            item = dataset[i]  # each item read once: a bad one is counted once in the source's report
            if item is None:
                continue
            x = item["image"]
            if images is None:  # the first usable item sets the shape; the whole split must fit
                shape = tuple(x.shape)
                need, have = n * x.numel(), _machine_bytes()
                if have is not None and need > MAX_MEMORY_FRACTION * have:
                    raise ValueError(f"{where}: {n} images of {shape} need {need / 2**30:.1f} GiB as uint8, more than "
                                     f"{MAX_MEMORY_FRACTION:.0%} of this machine's {have / 2**30:.1f} GiB; set "
                                     f"data.in_memory=false")
                images = torch.zeros((n, *shape), dtype=torch.uint8)
            elif tuple(x.shape) != shape:
                raise ValueError(f"{where}: item {item['key']!r} has shape {tuple(x.shape)}, the first had {shape}")
            u8 = ((x + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
            if exact and not torch.equal(u8.float() / 127.5 - 1, x):
                # not a uint8 image exactly (resampled, 16-bit): keep float32 so batches stay identical
                exact = False
                floats = torch.cat([images[:i].float() / 127.5 - 1, torch.zeros((n - i, *shape))])
            if exact:
                images[i] = u8
            else:
                floats[i] = x
            self.valid[i] = True
            self.captions[i], self.labels[i], self.keys[i] = item["caption"], item["label"], item["key"]
        if images is None:
            raise ValueError(f"{where}: no usable sample to hold in memory")
        self.images = images if exact else floats
        log.info("%s: %d images in memory (%s, %.0f MB), %d bad", where, int(self.valid.sum()),
                 "uint8" if exact else "float32", self.images.numel() * self.images.element_size() / 1e6,
                 n - int(self.valid.sum()))

    def __len__(self) -> int:
        return len(self.keys)

    def _image(self, index) -> torch.Tensor:
        x = self.images[index]
        return x.float() / 127.5 - 1 if x.dtype == torch.uint8 else x.clone()

    def __getitem__(self, index: int) -> dict | None:
        if not self.valid[index]:
            return None
        return {"image": self._image(index), "caption": self.captions[index], "label": int(self.labels[index]),
                "key": self.keys[index]}

    def batch(self, indices: Sequence[int]) -> dict:
        """``collate([self[i] for i in indices])``, by indexing; bad samples are dropped, so the batch
        may be smaller, or empty (zero images) where every index is a bad sample."""
        keep = [i for i in indices if self.valid[i]]
        index = torch.tensor(keep, dtype=torch.long)
        return {"images": self._image(index), "captions": [self.captions[i] for i in keep],
                "labels": self.labels[index], "keys": [self.keys[i] for i in keep]}


__all__ = ["InMemoryDataset"]
