"""The data order of a run as a pure function of (seed, step): which samples each process's
micro-batches hold, and the generator each micro-batch draws its randomness from. Exact resume,
and the same update on 1 or N processes, rest on it."""

from __future__ import annotations

from typing import Sequence

import torch


class GlobalBatchSampler(torch.utils.data.Sampler):
    """Yields this process's micro-batches (lists of indices) from optimiser step ``start_step`` on.

    Epoch ``e`` is ``randperm(n)`` seeded by ``(seed, e)``; global batch ``s`` of the epoch is
    ``perm[s*B : (s+1)*B]`` (the last partial batch is dropped), cut into ``accum`` chunks, each
    cut into ``world`` slices: micro-batch ``a`` of rank ``r`` is part ``a * world + r``. Infinite.

    ``lengths`` [n] and ``group`` > 0 (``data.group_by_length``): the epoch's kept indices
    ``perm[:steps*B]`` are cut into windows of ``group * B``, each sorted by length (stably) and
    cut into batches, and the epoch's batches are shuffled by the same seeded generator: each
    batch holds samples of similar length, and an epoch still holds every kept sample once.
    """

    def __init__(self, n: int, global_batch: int, accum: int, world: int, rank: int, seed: int, start_step: int = 0,
                 lengths: Sequence[int] | None = None, group: int = 0):
        if global_batch % (accum * world):
            raise ValueError(f"optim.batch_size={global_batch} must be divisible by grad_accum_steps x processes "
                             f"= {accum} x {world}")
        if n < global_batch:
            raise ValueError(f"the training set has {n} images, fewer than one global batch (optim.batch_size={global_batch})")
        self.n, self.B, self.accum, self.world, self.rank, self.seed = n, global_batch, accum, world, rank, seed
        self.micro = global_batch // (accum * world)
        self.steps_per_epoch = n // global_batch
        self.start_step = start_step
        self._perm: tuple[int, torch.Tensor] | None = None
        if group and (lengths is None or len(lengths) != n):
            raise ValueError(f"data.group_by_length={group} needs one length per sample ({n})")
        self.lengths = torch.as_tensor(lengths, dtype=torch.long) if group else None
        self.group = group

    def position(self, step: int) -> tuple[int, int]:
        """(epoch, global batch index within the epoch) of optimiser step ``step``."""
        return divmod(step, self.steps_per_epoch)

    def part_index(self, micro: int) -> int:
        """Where micro-batch ``micro`` of this rank sits in the global batch (0 .. accum*world-1)."""
        return micro * self.world + self.rank

    def global_batch(self, step: int) -> list[int]:
        epoch, index = self.position(step)
        if self._perm is None or self._perm[0] != epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            perm = torch.randperm(self.n, generator=g)
            if self.group:
                perm = self._grouped(perm[: self.steps_per_epoch * self.B], g)
            self._perm = (epoch, perm)
        return self._perm[1][index * self.B : (index + 1) * self.B].tolist()

    def _grouped(self, kept: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """``kept`` reordered into batches of similar length, the batches in a seeded random order."""
        window = self.group * self.B
        parts = []
        for lo in range(0, len(kept), window):
            chunk = kept[lo : lo + window]
            parts.append(chunk[torch.sort(self.lengths[chunk], stable=True).indices])
        batches = torch.cat(parts).view(-1, self.B)
        return batches[torch.randperm(len(batches), generator=g)].reshape(-1)

    def __iter__(self):
        """Lists of ``(index, item_seed)``: the seed makes the item's augmentation a function of
        (seed, step, slot), not of how many items a process has read since it started."""
        step = self.start_step
        while True:
            batch = self.global_batch(step)
            for a in range(self.accum):
                p = self.part_index(a)
                lo = p * self.micro
                yield [(i, (self.seed * 1_000_003 + step) * 65_537 + lo + j)
                       for j, i in enumerate(batch[lo : lo + self.micro])]
            step += 1


class SeededItems(torch.utils.data.Dataset):
    """``dataset[(index, item_seed)]``: calls the data set's public ``reseed(item_seed)`` before
    each item (data sets with random crops or caption draws have one, e.g.
    ``textok.data.ImageCaptionDataset``; data sets without randomness need none). Reseeding per
    item makes the data a pure function of the step, so a resumed run sees exactly the crops an
    uninterrupted run would.
    """

    def __init__(self, dataset):
        self.dataset = dataset
        inner = dataset
        while isinstance(inner, torch.utils.data.Subset):
            inner = inner.dataset
        self.inner = inner if hasattr(inner, "reseed") else None

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key):
        index, seed = key
        if self.inner is not None:
            self.inner.reseed(seed)
        return self.dataset[index]


def step_rng(seed: int, step: int, part: int, device) -> torch.Generator:
    """The generator a task uses for micro-batch ``part`` of step ``step``: same on 1 or N processes."""
    g = torch.Generator(device=device)
    g.manual_seed((seed * 1_000_003 + step) * 4099 + part)
    return g


__all__ = ["GlobalBatchSampler", "SeededItems", "step_rng"]
