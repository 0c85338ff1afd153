"""Helpers shared by the benchmark scripts (run them as ``python benchmarks/<name>.py``)."""

from __future__ import annotations

import time

import torch


def timed(fn, warmup: int, reps: int, device: str, min_seconds: float = 5.0) -> float:
    """Best (minimum) seconds per call over at least ``reps`` calls and ``min_seconds`` of calls.

    The minimum, not the median: on a machine shared with other jobs the slow calls are the
    disturbed ones.
    """
    for _ in range(warmup):
        fn()
    times = []
    while len(times) < reps or sum(times) < min_seconds:
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return min(times)
