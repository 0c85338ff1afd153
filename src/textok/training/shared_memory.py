"""Collectives between the training processes of one machine through shared memory (``grad_sync: shared_memory``).

A CPU run split over a machine's cores (``torchrun --nproc_per_node P``, one thread each) pays gloo ~1.5-2 ms per
collective through the loopback network, and DDP's gradient all-reduce runs beside the backward pass on cores that
are all busy: on a 2-core machine these cost more than the Newton-Schulz step (docs/results/speedrun.md). Here
every process writes its tensor into its own slot of a file in ``/dev/shm`` mapped by all, raises its counter,
waits until every counter has reached the call's number, then reads every slot. Two slot sets alternate, so a
process may run one call ahead of the slowest reader without overwriting what it still reads.

Correct only where a store becomes visible to other cores in program order (x86's total store order): a process
on another architecture (ARM's weaker ordering) is refused rather than risk reading a half-written slot. Rank 0
creates the file and shares its name over ``torch.distributed`` (gloo), which the run has initialised anyway; the
file is unlinked once every process has mapped it, so nothing is left behind when the run ends or is killed.
"""

from __future__ import annotations

import os
import platform
import tempfile
import time

import torch

from ..errors import TextokError

#: where a process must see another's stores in the order they were made (see the module docstring)
ORDERED_STORES = ("x86_64", "amd64", "i386", "i686", "x86")
LINE = 8  # int64 counters per cache line: each process's counter has its own line


class SharedMemoryGroup:
    """``all_reduce_mean_`` and ``all_gather`` of flat float tensors between the processes of a
    ``torch.distributed`` group on one machine. Every process must make the same calls in the same order (a
    channel per distinct tensor length is made on first use, collectively). ``timeout`` seconds without every
    process arriving raise an error naming the call."""

    def __init__(self, timeout: float = 600.0):
        import torch.distributed as dist

        if platform.machine().lower() not in ORDERED_STORES:
            raise TextokError(f"grad_sync=shared_memory relies on x86's store ordering; this machine is "
                               f"{platform.machine()}: use grad_sync=ddp")
        if not (dist.is_available() and dist.is_initialized()):
            raise TextokError("grad_sync=shared_memory needs torch.distributed initialised (torchrun or accelerate)")
        self.world, self.rank = dist.get_world_size(), dist.get_rank()
        self.timeout = timeout
        self._channels: dict[int, tuple[torch.Tensor, torch.Tensor, list[int]]] = {}

    def _channel(self, numel: int) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
        """The slots [2, world, numel] (float32), this process's view of the counters [world], and its call count."""
        if numel in self._channels:
            return self._channels[numel]
        import torch.distributed as dist

        data_bytes = 2 * self.world * numel * 4
        size = data_bytes + self.world * LINE * 8
        name, made = [None], None
        try:
            if self.rank == 0:
                shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
                fd, made = tempfile.mkstemp(prefix="textok-sync-", dir=shm)
                try:
                    os.ftruncate(fd, size)
                finally:
                    os.close(fd)
                name = [made]
            dist.broadcast_object_list(name, src=0)
            slots = torch.from_file(name[0], shared=True, size=size // 4, dtype=torch.float32)[: data_bytes // 4]
            words = torch.from_file(name[0], shared=True, size=size // 8, dtype=torch.int64)
            dist.barrier()  # every process has mapped it: the name is no longer needed
        finally:
            if made is not None:  # unlinked whether or not the others mapped it: nothing is left in /dev/shm
                os.unlink(made)
        counters = words[data_bytes // 8 :: LINE][: self.world]
        channel = (slots.view(2, self.world, numel), counters, [0])
        self._channels[numel] = channel
        return channel

    def _exchange(self, flat: torch.Tensor) -> torch.Tensor:
        """Publish ``flat`` and wait for every process's: the slots [world, numel] of this call."""
        if flat.dim() != 1 or flat.dtype != torch.float32 or flat.device.type != "cpu":
            raise ValueError(f"shared-memory collectives take a flat float32 CPU tensor, got {tuple(flat.shape)} "
                             f"{flat.dtype} on {flat.device}")
        slots, counters, calls = self._channel(flat.numel())
        n = calls[0] + 1
        calls[0] = n
        mine = slots[n % 2]
        mine[self.rank].copy_(flat)
        counters[self.rank] = n  # after the copy: x86 makes the stores visible in this order
        start = time.monotonic()
        while int(counters.min()) < n:
            if time.monotonic() - start > self.timeout:
                late = [r for r in range(self.world) if int(counters[r]) < n]
                raise TimeoutError(f"shared-memory collective #{n} ({flat.numel()} values): process(es) {late} did "
                                   f"not arrive within {self.timeout:.0f} s (stopped or killed?)")
            os.sched_yield()
        return mine

    def all_reduce_mean_(self, flat: torch.Tensor) -> torch.Tensor:
        """In place: ``flat`` [n] becomes the mean over processes (summed in rank order: the same bits everywhere)."""
        torch.sum(self._exchange(flat), dim=0, out=flat)
        return flat.div_(self.world)

    def all_gather(self, flat: torch.Tensor) -> list[torch.Tensor]:
        """Every process's ``flat`` [n], in rank order (copies: the slots are reused two calls later)."""
        return list(self._exchange(flat).clone().unbind(0))


__all__ = ["SharedMemoryGroup"]
