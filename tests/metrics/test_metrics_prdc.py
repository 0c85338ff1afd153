"""Precision / recall on k-NN manifolds: parity with the prdc package, synthetic overlaps."""

import numpy as np
import pytest

from textok.metrics import knn_radii, precision_recall


def test_matches_prdc_package():
    import prdc  # Naeem et al.'s reference implementation (imported only here)

    rng = np.random.default_rng(0)
    real = rng.normal(size=(300, 10)).astype(np.float32)
    fake = (rng.normal(size=(250, 10)) * 1.3 + 0.4).astype(np.float32)
    theirs = prdc.compute_prdc(real, fake, nearest_k=3)
    ours = precision_recall(real, fake, k=3)
    assert ours["precision"] == pytest.approx(theirs["precision"], abs=1e-12)
    assert ours["recall"] == pytest.approx(theirs["recall"], abs=1e-12)
    assert 0 < ours["precision"] < 1 and 0 < ours["recall"] < 1


def test_known_overlap():
    rng = np.random.default_rng(1)
    real = rng.uniform(0, 1, size=(400, 2))
    inside = rng.uniform(0.05, 0.95, size=(200, 2))
    outside = rng.uniform(0, 1, size=(200, 2)) + 50.0  # far away from the real manifold
    pr = precision_recall(real, np.concatenate([inside, outside]))
    assert 0.45 <= pr["precision"] <= 0.5  # exactly half the samples are plausible
    assert pr["recall"] > 0.85  # the inside half still covers the real square
    same = precision_recall(real, real)
    assert same == {"precision": 1.0, "recall": 1.0}
    assert precision_recall(real, outside) == {"precision": 0.0, "recall": 0.0}


def test_mode_collapse_keeps_precision_and_loses_recall():
    rng = np.random.default_rng(2)
    real = rng.normal(size=(500, 4))
    collapsed = rng.normal(size=(500, 4)) * 0.1  # every sample near the mode
    pr = precision_recall(real, collapsed)
    assert pr["precision"] > 0.95 and pr["recall"] < 0.3


def test_radii_are_the_kth_neighbour_distance_and_blocks_do_not_matter():
    import torch

    x = torch.tensor([[0.0], [1.0], [3.0], [6.0], [10.0]], dtype=torch.float64)
    assert knn_radii(x, k=1).tolist() == [1.0, 1.0, 2.0, 3.0, 4.0]
    assert knn_radii(x, k=2).tolist() == [3.0, 2.0, 3.0, 4.0, 7.0]
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(97, 5)), rng.normal(size=(61, 5))
    assert precision_recall(a, b, block=7) == precision_recall(a, b)
    with pytest.raises(ValueError, match="more than k=3"):
        precision_recall(a[:3], b)
