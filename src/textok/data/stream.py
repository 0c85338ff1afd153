"""Training from WebDataset shards: a deterministic stream, so runs on many machines resume exactly.

Shards are named by a folder (``root/<split>-000000.tar`` ..., see ``textok.data.shards``), one
``.tar`` file, or a pattern: ``data/train-{000000..000127}.tar`` (numeric ranges keep their zero
padding), ``{a,b,c}`` lists, and ``*`` / ``?`` globs.

The stream (``ShardStream``) is a pure function of ``(seed, epoch, rank, slot)``:

- **shard order**: a permutation of the shards seeded by ``(seed, epoch)``, the same everywhere;
- **split**: process ``r`` of ``world`` takes shards ``r, r + world, ...`` of that order; slot
  ``w`` of ``W`` (one per ``DataLoader`` worker, ``W = max(1, data.num_workers)``) takes every
  ``W``-th of those. With fewer shards than readers the split falls back to samples: every
  reader scans the shards and keeps every N-th sample (correct, but each shard is read N times:
  give at least ``processes x workers`` shards, ideally many more);
- **shuffle**: each slot passes its samples through a shuffle buffer (``data.shuffle_buffer``
  samples) driven by a ``random.Random`` seeded by ``(seed, epoch, rank, slot)``; augmentations
  (crops, caption draws) use a generator seeded by ``(seed, epoch, rank, slot, position)``;
- **epochs**: every slot yields the same number ``b_e`` of micro-batches in epoch ``e``:
  ``b_e = min over all readers of floor(samples_of_reader / micro_batch)``. A reader's samples
  beyond ``b_e x micro_batch`` (the tail of its shuffled order) are dropped for that epoch, so
  with unequal shards some samples are skipped in an epoch; none is ever seen twice in one.
  With equal shards and a micro-batch that divides each reader's count, every sample is seen
  exactly once per epoch;
- **DataLoader**: micro-batch ``k`` of a process comes from slot ``k mod W``; the ``DataLoader``
  fetches its workers round-robin, so the order is fixed.

So the data position is ``(step x grad_accum_steps)`` micro-batches per process, a function of
the step: a resumed run regenerates each slot's stream and skips what was consumed (reading the
tar members, not decoding them), and is bit-exact. The layout (processes, slots, micro-batch,
shards) is saved in the checkpoint; resuming with another layout is refused, or, with
``data.reshard_on_resume=true``, the stream restarts at the next epoch boundary under the new
layout (each sample at most once per epoch, not bit-exact).
"""

from __future__ import annotations

import bisect
import glob
import hashlib
import itertools
import json
import logging
import os
import random
import re
import tarfile
from pathlib import Path
from typing import Callable

import torch

from .captions import caption_variant
from .datasets import collate, open_dataset
from .formats import (SHARDS_FILE, BadSampleReport, DataRootLock, detect_format, read_manifest, set_sample_options,
                      text_problem)
from .shards import TAR_ERRORS, ShardDataset, check_tar_end, iter_tar_samples, shard_files, tar_damage, tar_members
from .transforms import ImageError

log = logging.getLogger(__name__)

_RANGE = re.compile(r"\{(\d+)\.\.(\d+)\}")
_LIST = re.compile(r"\{([^{}]*,[^{}]*)\}")


# ---- naming shards ------------------------------------------------------------------------
def is_pattern(spec: str | os.PathLike) -> bool:
    s = str(spec)
    return bool(_RANGE.search(s) or _LIST.search(s) or any(ch in s for ch in "*?["))


def expand_braces(spec: str) -> list[str]:
    """``a-{000..002}.tar`` -> ``a-000.tar, a-001.tar, a-002.tar``; ``{x,y}`` lists; nested ok."""
    ranges, lists = _RANGE.search(spec), _LIST.search(spec)
    m = ranges if ranges and (not lists or ranges.start() < lists.start()) else None
    if m:
        lo, hi = m.group(1), m.group(2)
        width = len(lo) if lo.startswith("0") or len(lo) == len(hi) else 0
        a, b = int(lo), int(hi)
        if b < a:
            raise ValueError(f"{spec}: empty range {{{lo}..{hi}}}")
        out = []
        for i in range(a, b + 1):
            out += expand_braces(spec[: m.start()] + str(i).zfill(width) + spec[m.end():])
        return out
    m = lists
    if m:
        out = []
        for part in m.group(1).split(","):
            out += expand_braces(spec[: m.start()] + part + spec[m.end():])
        return out
    return [spec]


def expand_shards(spec: str | os.PathLike) -> list[Path]:
    """The shard files a pattern names, in order; every one must exist."""
    names = []
    for name in expand_braces(os.path.expanduser(str(spec))):
        if any(ch in name for ch in "*?["):
            found = sorted(glob.glob(name))
            if not found:
                raise FileNotFoundError(f"data: no shard matches {name}")
            names += found
        else:
            names.append(name)
    paths = [Path(n) for n in names]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise FileNotFoundError(f"data: {len(missing)} of the {len(paths)} shards of {spec} do not exist: "
                                f"{', '.join(missing[:3])}{more}")
    if len(set(paths)) != len(paths):
        raise ValueError(f"data: {spec} names a shard more than once")
    return paths


def is_shard_source(root: str | os.PathLike) -> bool:
    """A pattern, a ``.tar`` file, or a folder of shards."""
    if is_pattern(root):
        return True
    p = Path(root).expanduser()
    if p.is_file():
        return p.suffix == ".tar"
    if p.is_dir():
        try:
            return detect_format(p) == "shards"
        except ValueError:
            return False
    return False


def data_home(root: str | os.PathLike) -> Path:
    """The folder that holds a data set's side files (``text_cache/``, ``manifest.json``, caption
    pools): ``root`` itself for a folder, the shards' folder for a pattern or a ``.tar``."""
    s = os.path.expanduser(str(root))
    if is_pattern(s):
        return Path(expand_braces(s)[0]).parent
    p = Path(s)
    return p.parent if p.suffix == ".tar" and not p.is_dir() else p


def resolve_shards(root: str | os.PathLike, split: str) -> list[Path]:
    """Shard files of ``split``: a pattern names them itself (``split`` is ignored), a folder
    lists them in ``shards.json`` (or ``<split>-*.tar``)."""
    if is_pattern(root):
        return expand_shards(root)
    return shard_files(Path(root).expanduser(), split)


def count_tar_samples(path: Path) -> tuple[int, str | None]:
    """``(samples, damage)``: the samples (groups of members sharing a key) in one tar, from the headers
    only, and why it could not be read to its end (None if it could); a damaged tar is counted up to the
    damage, without the sample the damage cuts."""
    n, last = 0, None
    try:
        with tarfile.open(path, "r") as tar:
            for key, _, _ in tar_members(tar):
                if key != last:
                    n, last = n + 1, key
        check_tar_end(path)
    except TAR_ERRORS as e:
        return max(0, n - 1), tar_damage(e, max(0, n - 1))
    return n, None


def shard_counts(shards: list[Path]) -> list[int]:
    """Samples per shard: from each folder's ``shards.json`` where it lists them for the very file
    (its recorded size), else counted. A damaged (truncated) shard keeps its recorded count: the
    stream then reads what is left and counts the rest as skipped samples."""
    known: dict[Path, int] = {}
    recorded: dict[Path, int] = {}
    for folder in {p.parent for p in shards}:
        index = folder / SHARDS_FILE
        if not index.is_file():
            continue
        try:
            splits = json.loads(index.read_text(encoding="utf-8")).get("splits", {})
        except (UnicodeDecodeError, json.JSONDecodeError):
            continue
        for info in splits.values():
            counts = info.get("counts")
            sizes = info.get("bytes") or [None] * len(counts or [])
            if isinstance(counts, list) and len(counts) == len(info.get("shards", [])) == len(sizes):
                for name, c, size in zip(info["shards"], counts, sizes):
                    recorded[folder / name] = int(c)
                    # a count holds only for the file it was made for: a shard replaced since is counted again
                    if size is None or _size(folder / name) == size:
                        known[folder / name] = int(c)
    todo = [p for p in shards if p not in known]
    if todo:
        log.info("counting the samples of %d shard(s) (no counts in %s)", len(todo), SHARDS_FILE)
        for p in todo:
            n, damage = count_tar_samples(p)
            if damage:
                log.warning("%s: %s", p, damage)
            known[p] = recorded.get(p, n) if damage else n
    return [known[p] for p in shards]


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


# ---- the deterministic plan ---------------------------------------------------------------
def epoch_order(num_shards: int, seed: int, epoch: int) -> list[int]:
    order = list(range(num_shards))
    random.Random(seed * 1_000_003 + epoch).shuffle(order)
    return order


def reader_plan(order: list[int], counts: list[int], rank: int, world: int, slot: int, slots: int):
    """``(shard ids, stride, offset, samples)`` of reader (rank, slot): its shards in reading order
    and which of their samples (running index ``i`` with ``i % stride == offset``) it keeps."""
    if len(order) >= world:
        mine = order[rank::world]
        if len(mine) >= slots:
            mine = mine[slot::slots]
            return mine, 1, 0, sum(counts[i] for i in mine)
        stride, offset = slots, slot
    else:  # fewer shards than processes: split by sample
        mine, stride, offset = list(order), world * slots, rank + world * slot
    total = sum(counts[i] for i in mine)
    return mine, stride, offset, len(range(offset, total, stride))


def _seed(*parts: int) -> int:
    s = 0
    for p in parts:
        s = s * 1_000_003 + int(p)
    return s


class ShardStream(ShardDataset):
    """An infinite stream of micro-batches from shards for one process (see the module docstring).

    Build it with the data options, then ``configure(...)`` with the process's layout before
    iterating (``StreamBatches`` does that for the ``Trainer``). ``len()`` is the sample count.
    """

    is_stream = True

    def __init__(self, shards: list[Path], image_size: int = 64, train: bool = True, on_bad_sample: str = "skip",
                 flip: bool = False, seed: int = 0, caption_variant: str = "full", min_image_size: int | None = None,
                 shuffle_buffer: int = 1000, where: str = "", counts: list[int] | None = None):
        set_sample_options(self, image_size, train, on_bad_sample, flip, seed, caption_variant, min_image_size)
        if not shards:
            raise ValueError(f"{where}: no shards")
        self.root = Path(where or shards[0].parent)
        self.where = where or str(shards[0].parent)
        self.shards = list(shards)
        self.counts = list(counts) if counts is not None else shard_counts(self.shards)
        self.num_samples = sum(self.counts)
        self.shuffle_buffer = shuffle_buffer
        self.epoch = 0
        self.report = BadSampleReport(where=self.where)
        self.rank, self.world, self.slots, self.micro = 0, 1, 1, 1
        self.epoch_base, self.start_micro = 0, 0
        self.collate_fn: Callable = _default_collate
        self._batches: dict[int, int] = {}

    # -- layout ----------------------------------------------------------------------------
    def configure(self, rank: int, world: int, slots: int, micro: int, epoch_base: int = 0, start_micro: int = 0,
                  collate_fn: Callable | None = None) -> "ShardStream":
        self.rank, self.world, self.slots, self.micro = rank, world, max(1, slots), micro
        self.epoch_base, self.start_micro = epoch_base, start_micro
        if collate_fn is not None:
            self.collate_fn = collate_fn
        self._batches = {}
        if self.batches_in_epoch(epoch_base) == 0:
            least = min(reader_plan(epoch_order(len(self.shards), self.seed, epoch_base), self.counts, r, world, w,
                                    self.slots)[3] for r in range(world) for w in range(self.slots))
            raise ValueError(f"{self.where}: {len(self.shards)} shard(s), {self.num_samples} samples: a reader "
                             f"({world} process(es) x {self.slots} loader slot(s)) gets only {least} samples, fewer "
                             f"than one micro-batch of {micro}; use more data, fewer processes / data.num_workers "
                             f"or a smaller optim.batch_size")
        return self

    def digest(self) -> str:
        h = hashlib.sha256()
        for p, c in zip(self.shards, self.counts):
            h.update(f"{p.name}:{c}\n".encode())
        return h.hexdigest()[:16]

    def batches_in_epoch(self, epoch: int) -> int:
        """Micro-batches every reader yields in ``epoch`` (the same for all)."""
        b = self._batches.get(epoch)
        if b is None:
            order = epoch_order(len(self.shards), self.seed, epoch)
            b = min(reader_plan(order, self.counts, r, self.world, w, self.slots)[3] // self.micro
                    for r in range(self.world) for w in range(self.slots))
            self._batches[epoch] = b
        return b

    def locate(self, batches: int) -> tuple[int, int]:
        """(epoch, micro-batch within the epoch) of a slot that has yielded ``batches``."""
        epoch = self.epoch_base
        while batches >= self.batches_in_epoch(epoch):
            batches -= self.batches_in_epoch(epoch)
            epoch += 1
        return epoch, batches

    def slot_batches(self, micro_batches: int, slot: int) -> int:
        """Micro-batches slot ``slot`` has produced when its process has consumed ``micro_batches``."""
        return max(0, (micro_batches - slot + self.slots - 1) // self.slots)

    # -- reading ---------------------------------------------------------------------------
    def _raw(self, epoch: int, slot: int):
        """This reader's raw samples (undecoded tar members) of ``epoch`` in shuffled order."""
        order = epoch_order(len(self.shards), self.seed, epoch)
        mine, stride, offset, _ = reader_plan(order, self.counts, self.rank, self.world, slot, self.slots)
        rng = random.Random(_seed(self.seed, epoch, self.rank, slot, 7))
        samples = (s for i, s in enumerate(itertools.chain.from_iterable(self._shard_samples(j) for j in mine))
                   if i % stride == offset)
        S = self.shuffle_buffer if self.train else 1
        if S <= 1:
            yield from samples
            return
        buffer: list = []
        for s in samples:
            buffer.append(s)
            if len(buffer) >= S:
                yield _pop(buffer, rng)
        while buffer:
            yield _pop(buffer, rng)

    def _shard_samples(self, j: int):
        """Shard ``j``'s raw samples. A damaged (truncated) shard is reported once, then padded to
        its planned count with stand-ins that decode as skipped items: every reader's positions stay
        those of the plan, so the stream stays exact and the lost samples are counted in the batches."""
        damage: list[str] = []
        n = 0
        for sample in iter_tar_samples(self.shards[j], damage.append):
            n += 1
            yield sample
        if damage:
            self._damaged(self.shards[j])(damage[0])
            for k in range(n, self.counts[j]):
                yield {"__key__": f"lost-{k}", "__shard__": self.shards[j].name, "__lost__": damage[0]}

    def _item(self, raw: dict, epoch: int, slot: int, position: int) -> dict | None:
        if "__lost__" in raw:  # a sample of a damaged shard: reported once with its shard
            return None
        rng = random.Random(_seed(self.seed, epoch, self.rank, slot, position))
        try:
            return self._decode(raw, rng)
        except ImageError as e:
            self.report.handle(e.name, e.reason, self.on_bad_sample)
            return None

    def slot_stream(self, slot: int, start: int = 0):
        """Slot ``slot``'s micro-batches (collated) from its ``start``-th on, forever."""
        epoch, skip = self.locate(start)
        while True:
            n = self.batches_in_epoch(epoch) * self.micro
            chunk: list = []
            for position, raw in enumerate(self._raw(epoch, slot)):
                if position >= n:
                    break
                if position < skip * self.micro:
                    continue  # consumed before the resume: read, not decoded
                chunk.append(self._item(raw, epoch, slot, position))
                if len(chunk) == self.micro:
                    yield self.collate_fn(chunk)
                    chunk = []
            epoch, skip = epoch + 1, 0

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        workers, worker = (info.num_workers, info.id) if info is not None else (1, 0)
        if workers != self.slots:
            raise RuntimeError(f"ShardStream configured for {self.slots} slot(s) but read by {workers} "
                               f"DataLoader worker(s)")
        # the DataLoader asks its worker 0 first: it serves the slot of the next micro-batch
        slot = (worker + self.start_micro) % self.slots
        yield from self.slot_stream(slot, self.slot_batches(self.start_micro, slot))

    # -- previews --------------------------------------------------------------------------
    def head(self, n: int) -> list[dict]:
        """The first ``n`` usable items in the shards' own order (no shuffling, no augmentation)."""
        items = []
        for shard in self.shards:
            for raw in iter_tar_samples(shard, self._damaged(shard)):
                item = self._item(raw, 0, 0, len(items))
                if item is not None:
                    items.append(item)
                if len(items) >= n:
                    return items
        return items


def _pop(buffer: list, rng: random.Random):
    i = rng.randrange(len(buffer))
    buffer[i], buffer[-1] = buffer[-1], buffer[i]
    return buffer.pop()


def _default_collate(items):
    return collate(items)


def open_stream(root: str | os.PathLike, split: str = "train", image_size: int = 64, train: bool = True,
                on_bad_sample: str = "skip", flip: bool = False, seed: int = 0, caption_variant: str = "full",
                shuffle_buffer: int = 1000) -> ShardStream:
    """A ``ShardStream`` over a shard folder's ``split``, a ``.tar`` or a pattern."""
    shards = resolve_shards(root, split)
    manifest = read_manifest(data_home(root))
    min_size = min(manifest.get("min_image_size", image_size), image_size)
    where = str(root) if is_pattern(root) else f"{root} [{split}]"
    return ShardStream(shards, image_size=image_size, train=train, on_bad_sample=on_bad_sample, flip=flip, seed=seed,
                       caption_variant=caption_variant, min_image_size=min_size, shuffle_buffer=shuffle_buffer,
                       where=where)


def open_split(root: str | os.PathLike, split: str, image_size: int, train: bool, flip: bool, seed: int,
               on_bad_sample: str, caption_variant: str = "full", shuffle_buffer: int = 1000):
    """A split to train or evaluate on: a map-style data set (folders, class trees: the Trainer
    picks indices), or for WebDataset shards (a shard folder, a ``.tar``, a pattern
    ``train-{000000..000127}.tar``; a pattern names its shards itself, so ``split`` is then
    ignored) a deterministic ``ShardStream``; both resume exactly."""
    # held for as long as the data set is: `data fetch` must not rebuild the root under this run
    lock = DataRootLock(data_home(root))
    if is_shard_source(root):
        ds = open_stream(root, split, image_size=image_size, train=train, on_bad_sample=on_bad_sample, flip=flip,
                         seed=seed, caption_variant=caption_variant, shuffle_buffer=shuffle_buffer)
    else:
        ds = open_dataset(root, split=split, image_size=image_size, train=train, on_bad_sample=on_bad_sample,
                          flip=flip, seed=seed, caption_variant=caption_variant)
        if len(ds) == 0:
            raise ValueError(f"{root} ({split}): no images")
    ds.root_lock = lock
    return ds


# ---- the Trainer's side -------------------------------------------------------------------
STREAM_FORMAT = 1


def ignore_interrupts(worker_id: int = 0) -> None:
    """A ``DataLoader`` worker's ``worker_init_fn``: ignore SIGINT. Ctrl-C in a terminal reaches
    the whole process group; a worker that died of it would crash the main process's next batch,
    which instead finishes its step and saves (``Trainer``)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


class StreamBatches:
    """What the ``Trainer`` keeps instead of a ``GlobalBatchSampler`` for a ``ShardStream``: the
    layout, where each micro-batch sits in the global batch, and the state saved in checkpoints."""

    def __init__(self, stream: ShardStream, global_batch: int, accum: int, world: int, rank: int, slots: int,
                 step_base: int = 0, epoch_base: int = 0):
        if global_batch % (accum * world):
            raise ValueError(f"optim.batch_size={global_batch} must be divisible by grad_accum_steps x processes "
                             f"= {accum} x {world}")
        self.stream, self.accum, self.world, self.rank, self.slots = stream, accum, world, rank, max(1, slots)
        self.micro = global_batch // (accum * world)
        self.step_base, self.epoch_base = step_base, epoch_base

    def part_index(self, micro: int) -> int:
        return micro * self.world + self.rank

    def micro_batches(self, step: int) -> int:
        return (step - self.step_base) * self.accum

    def position(self, step: int) -> tuple[int, int]:
        """(epoch, micro-batch within the epoch) of slot 0 at ``step``."""
        return self.stream.locate(self.stream.slot_batches(self.micro_batches(step), 0))

    def state(self, step: int) -> dict:
        k = self.micro_batches(step)
        slots = [list(self.stream.locate(self.stream.slot_batches(k, w))) for w in range(self.slots)]
        return {"format": STREAM_FORMAT, "processes": self.world, "slots": self.slots, "micro_batch": self.micro,
                "num_shards": len(self.stream.shards), "num_samples": self.stream.num_samples,
                "shards_digest": self.stream.digest(), "step_base": self.step_base, "epoch_base": self.epoch_base,
                "slot_positions": slots}


def stream_loader(stream: ShardStream, *, global_batch: int, accum: int, world: int, rank: int, seed: int,
                  step: int, num_workers: int, collate_fn: Callable, pin_memory: bool, saved: dict | None,
                  reshard: bool, resumed: bool):
    """``(StreamBatches, DataLoader)`` for a process at optimiser step ``step``; ``saved`` is the
    checkpoint's stream state (checked against this layout)."""
    slots = max(1, num_workers)
    step_base, epoch_base = 0, 0
    if resumed and step > 0:
        micro = global_batch // max(1, accum * world)
        now = {"processes": world, "slots": slots, "micro_batch": micro, "num_shards": len(stream.shards),
               "shards_digest": stream.digest()}
        if saved is None:
            problem = "the checkpoint was written while training on a map-style data set (not shards)"
            old_epoch = None
        else:
            differ = [f"{k}: {saved.get(k)} != {v}" for k, v in now.items() if saved.get(k) != v]
            problem = "; ".join(differ)
            old_epoch = max((e + (1 if b else 0)) for e, b in saved["slot_positions"])
            step_base, epoch_base = int(saved["step_base"]), int(saved["epoch_base"])
        if problem:
            if not reshard:
                raise ValueError(
                    f"--resume: the shard stream cannot continue exactly ({problem}). A stream is a function of "
                    f"(processes, data.num_workers, micro-batch, shards): resume with the same ones, or add "
                    f"data.reshard_on_resume=true to restart the stream at the next epoch under the new layout "
                    f"(each sample at most once per epoch; not bit-exact)")
            step_base, epoch_base = step, (old_epoch or 0)
            log.warning("shard stream: %s; restarting it at epoch %d (step %d) under the new layout", problem,
                        epoch_base, step)
    sampler = StreamBatches(stream, global_batch, accum, world, rank, slots, step_base, epoch_base)
    stream.configure(rank, world, slots, sampler.micro, epoch_base, sampler.micro_batches(step), collate_fn)
    loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=num_workers, pin_memory=pin_memory,
                                         generator=torch.Generator().manual_seed(seed),
                                         worker_init_fn=ignore_interrupts if num_workers else None)
    return sampler, loader


# ---- random access (encode-dataset) -------------------------------------------------------
class ShardIndex(torch.utils.data.Dataset):
    """Map-style view of shards (canonical order: shard by shard) by a header index of each tar:
    ``ds[i]`` reads sample ``i``'s members with a seek. For ``encode-dataset`` (resumable,
    evenly spread subsets), not for training (that streams)."""

    def __init__(self, shards: list[Path], image_size: int = 64, on_bad_sample: str = "skip",
                 caption_variant: str = "full", min_image_size: int | None = None, where: str = "",
                 classes: list[str] | None = None):
        self._dec = ShardStream(shards, image_size=image_size, train=False, on_bad_sample=on_bad_sample,
                                caption_variant=caption_variant, min_image_size=min_image_size, where=where,
                                counts=[0] * len(shards))
        self.shards = list(shards)
        self.report = self._dec.report
        self.classes = list(classes or [])
        self.index: list[list[dict]] = [_tar_index(p, self._dec._damaged(p)) for p in self.shards]
        self.starts = [0]
        for members in self.index:
            self.starts.append(self.starts[-1] + len(members))

    def __len__(self) -> int:
        return self.starts[-1]

    def __getitem__(self, i: int) -> dict | None:
        if not 0 <= i < len(self):
            raise IndexError(i)
        s = bisect.bisect_right(self.starts, i) - 1
        entry = self.index[s][i - self.starts[s]]
        sample = {"__key__": entry["key"], "__shard__": self.shards[s].name}
        with open(self.shards[s], "rb") as f:
            for ext, (offset, size) in entry["members"].items():
                f.seek(offset)
                sample[ext] = f.read(size)
        return self._dec._item(sample, 0, 0, i)


def _tar_index(path: Path, on_damage) -> list[dict]:
    """Each sample's members as (offset, size) in ``path``, from the headers; a damaged tar is indexed
    up to the damage (the sample it cuts is dropped) and ``on_damage(reason)`` is called."""
    samples: list[dict] = []
    try:
        with tarfile.open(path, "r") as tar:
            for key, ext, member in tar_members(tar):
                if not samples or samples[-1]["key"] != key:
                    samples.append({"key": key, "members": {}})
                samples[-1]["members"][ext] = (member.offset_data, member.size)
        check_tar_end(path)
        return samples
    except TAR_ERRORS as e:
        samples = [s for s in samples[:-1]]  # the last one may be cut: its data is past the damage
        on_damage(tar_damage(e, len(samples)))
        return samples


def open_indexed(root: str | os.PathLike, split: str, image_size: int, on_bad_sample: str = "skip") -> ShardIndex:
    shards = resolve_shards(root, split)
    manifest = read_manifest(data_home(root))
    return ShardIndex(shards, image_size=image_size, on_bad_sample=on_bad_sample,
                      min_image_size=min(manifest.get("min_image_size", image_size), image_size),
                      where=str(root) if is_pattern(root) else f"{root} [{split}]", classes=manifest.get("classes", []))


def spread(n: int, k: int | None) -> list[int]:
    """``k`` indices evenly spread over ``range(n)`` (all of them if ``k`` is None or >= n).

    Not the first ``k``: data sets listed class by class (class trees) would give one class.
    """
    if k is None or k >= n:
        return list(range(n))
    return [(i * n) // k for i in range(k)]


def shard_captions(shards: list[Path], variant: str = "full"):
    """Every caption the samples of ``shards`` can carry, without decoding images."""
    for shard in shards:
        for sample in iter_tar_samples(shard, lambda reason, shard=shard: log.warning("%s: %s", shard, reason)):
            try:
                meta = json.loads(sample.get("json", b"{}").decode("utf-8"))
                txt = sample.get("txt", b"").decode("utf-8")
            except (UnicodeDecodeError, json.JSONDecodeError):
                continue  # a bad sample: training skips it too
            for c in meta.get("captions") or [txt or meta.get("caption", "")]:
                if isinstance(c, str) and c.strip() and not text_problem(c):
                    yield caption_variant(c, variant, meta.get("class"))


__all__ = ["ShardStream", "StreamBatches", "ShardIndex", "open_split", "open_stream", "open_indexed", "stream_loader",
           "expand_braces", "expand_shards", "is_pattern", "is_shard_source", "data_home", "resolve_shards",
           "shard_counts", "reader_plan", "epoch_order", "spread", "shard_captions", "ignore_interrupts"]
