"""benchmarks/bench_generation.py: the batch search behind --max-throughput."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from bench_generation import best_batch  # noqa: E402


def test_best_batch_doubles_until_images_per_second_saturates():
    # per-image seconds fall with the batch until 8, then stay flat: the search stops at 16
    cost = {1: 1.0, 2: 0.6, 4: 0.4, 8: 0.3, 16: 0.295, 32: 0.1}
    calls = []

    def seconds_per_image(b):
        calls.append(b)
        return cost[b]

    batch, sec, tried = best_batch(seconds_per_image, max_batch=64, saturation=0.05)
    assert calls == [1, 2, 4, 8, 16]  # 16 gains < 5% over 8: no batch 32
    assert (batch, sec) == (16, 0.295)  # the best batch tried, even inside the threshold
    assert tried == [(b, cost[b]) for b in calls]


def test_best_batch_respects_max_batch_and_a_slower_larger_batch():
    batch, sec, tried = best_batch(lambda b: {1: 1.0, 2: 0.5, 4: 0.45}[b], max_batch=4, saturation=0.05)
    assert [b for b, _ in tried] == [1, 2, 4] and (batch, sec) == (4, 0.45)
    batch, _, tried = best_batch(lambda b: {1: 1.0, 2: 1.3}[b], max_batch=64, saturation=0.05)
    assert batch == 1 and len(tried) == 2  # a slower batch 2 ends the search; batch 1 stays best
