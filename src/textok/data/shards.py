"""WebDataset tar shards: the layout and a streaming reader (the writer: ``textok.data.shard_writer``).

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

import json
import logging
import os
import random
import tarfile
import zlib
from pathlib import Path

import torch

from .captions import caption_variant
from .formats import SHARD_IMAGE_EXTS, SHARDS_FILE, BadSampleReport, set_sample_options, text_problem
from .transforms import ImageError, decode_image, prepare_image

log = logging.getLogger(__name__)


def shard_splits(root: Path) -> list[str]:
    """The splits of a shard folder, unfinished ones included (opening those is refused, so a check
    reports them)."""
    index = Path(root) / SHARDS_FILE
    if index.is_file():
        data = json.loads(index.read_text())
        return sorted(set(data["splits"]) | set(data.get("writing", [])))
    return sorted({p.name.rsplit("-", 1)[0] for p in Path(root).glob("*.tar")})


def shard_files(root: Path, split: str) -> list[Path]:
    root = Path(root)
    if root.is_file():
        return [root]
    index = root / SHARDS_FILE
    if index.is_file():
        data = json.loads(index.read_text())
        splits = data["splits"]
        if split in data.get("writing", []):
            raise ValueError(f"{index}: split {split!r} is unfinished: the `textok data shards` run writing it "
                             f"stopped (killed?); run it again to finish")
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


def tar_members(tar: tarfile.TarFile):
    """Yield ``(key, ext, member)`` for each file of ``tar``: a sample's members share a key (the
    path up to the first dot of the file name); ``ext`` is the rest, lower-cased."""
    for member in tar:
        if not member.isfile():
            continue
        base, _, ext = os.path.basename(member.name).partition(".")
        yield os.path.join(os.path.dirname(member.name), base), ext.lower(), member


def tar_damage(error: BaseException, samples: int) -> str:
    """The reason a tar could not be read to its end, in one line."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    detail = next((line.split(":", 1)[1].strip(" ()'\"") for line in lines if line.startswith("- method tar")),
                  lines[0] if lines else type(error).__name__)
    return f"truncated or corrupt shard ({detail}); {samples} sample(s) read before the damage"


#: what reading a damaged tar raises (a truncated download, a full disk while writing)
TAR_ERRORS = (tarfile.TarError, EOFError, zlib.error)


def check_tar_end(path: Path) -> None:
    """``tarfile.ReadError`` unless an uncompressed tar ends with its end-of-archive marker (two zero
    blocks). Python's reader takes a tar cut at a member boundary for a complete one; the marker is
    what a cut removes."""
    with open(path, "rb") as f:
        if f.read(2) == b"\x1f\x8b":  # gzip: its own checks catch a cut
            return
        size = f.seek(0, os.SEEK_END)
        if size % 512:
            raise tarfile.ReadError("unexpected end of data")  # not whole 512-byte blocks
        f.seek(max(0, size - 1024))
        if size < 1024 or f.read(1024).strip(b"\0"):
            raise tarfile.ReadError("unexpected end of data")  # no end-of-archive marker


def iter_tar_samples(path: Path, on_damage=None):
    """Yield dicts ``{"__key__", ext: bytes, ...}`` grouping consecutive members by key.

    A tar that cannot be read to its end (truncated, corrupt) yields the samples before the
    damage, then calls ``on_damage(reason)`` and stops; without ``on_damage`` it raises
    ``ValueError`` naming the file."""
    current: dict | None = None
    n = 0
    try:
        with tarfile.open(path, "r") as tar:
            for key, ext, member in tar_members(tar):
                if current is None or current["__key__"] != key:
                    if current is not None:
                        n += 1
                        yield current
                    current = {"__key__": key, "__shard__": path.name}
                current[ext] = tar.extractfile(member).read()
        check_tar_end(path)  # the last sample may be cut short: it is not yielded then
    except TAR_ERRORS as e:
        reason = tar_damage(e, n)
        if on_damage is None:
            raise ValueError(f"{path}: {reason}") from None
        on_damage(reason)
        return
    if current is not None:
        yield current


class ShardDataset(torch.utils.data.IterableDataset):
    """Streams one split of a shard dataset; items as ``open_dataset``'s.

    ``len(dataset)`` is the split's total sample count (all nodes together). Call
    ``set_epoch(e)`` each epoch for a new shard order when ``train=True``.
    """

    IMAGE_EXTS = SHARD_IMAGE_EXTS

    def __init__(self, root: str | os.PathLike, split: str = "train", image_size: int = 64, train: bool = False,
                 on_bad_sample: str = "skip", flip: bool = False, seed: int = 0, caption_variant: str = "full",
                 min_image_size: int | None = None, shuffle_buffer: int = 256):
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

    def _damaged(self, shard: Path):
        """``on_damage`` of ``iter_tar_samples`` for ``shard``: a truncated shard is one bad sample of
        the report (its lost samples are unknown), skipped or an error by ``on_bad_sample``."""
        return lambda reason: self.report.handle(shard.name, reason, self.on_bad_sample, shown=shard)

    def _decode(self, sample: dict, rng: random.Random) -> dict:
        name = f"{sample['__shard__']}:{sample['__key__']}"
        meta = {}
        if "json" in sample:
            try:
                meta = json.loads(sample["json"].decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                raise ImageError(name, f"metadata is not UTF-8 JSON ({e})") from None
        caption = meta.get("caption")
        if "txt" in sample:
            try:
                caption = sample["txt"].decode("utf-8")
            except UnicodeDecodeError:
                raise ImageError(name, "caption is not UTF-8") from None
        captions = meta.get("captions") or [caption]
        if self.train and len(captions) > 1:
            caption = captions[rng.randrange(len(captions))]
        if not isinstance(caption, str) or not caption.strip():
            raise ImageError(name, "missing or empty caption")
        if text_problem(caption):  # "\ud800" in the .json: valid JSON no text encoder takes
            raise ImageError(name, text_problem(caption))
        ext = next((e for e in self.IMAGE_EXTS if e in sample), None)
        if ext is None:
            raise ImageError(name, f"no image member (members: {sorted(k for k in sample if not k.startswith('__'))})")
        image = prepare_image(decode_image(sample[ext], name), self.image_size, name, train=self.train, rng=rng,
                              flip=self.flip, min_size=self.min_image_size)
        return {"image": image, "caption": caption_variant(caption, self.caption_variant, meta.get("class")),
                "label": int(meta.get("label", -1)), "key": meta.get("key", name)}

    def __iter__(self):
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
            for sample in iter_tar_samples(shard, self._damaged(shard)):
                n += 1
                if not by_shard and n % consumers != consumer:
                    continue
                try:
                    item = self._decode(sample, rng)
                except ImageError as e:
                    self.report.handle(e.name, e.reason, self.on_bad_sample)
                    continue
                if not self.train or self.shuffle_buffer <= 1:
                    yield item
                    continue
                buffer.append(item)
                if len(buffer) >= self.shuffle_buffer:
                    yield buffer.pop(rng.randrange(len(buffer)))
        rng.shuffle(buffer)
        yield from buffer


__all__ = ["ShardDataset", "iter_tar_samples", "tar_members", "tar_damage", "TAR_ERRORS", "check_tar_end", "shard_files", "shard_splits", "consumer_rank", "SHARDS_FILE"]
