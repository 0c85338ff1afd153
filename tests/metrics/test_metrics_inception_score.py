"""Inception Score: formula checks, parity with torchmetrics, loading torch-fidelity-layout weights.

No Inception classifier weights exist offline here: the file below has the torch-fidelity key
layout with a randomly initialised 1008-way classifier on top of the real pool3 network.
"""

import numpy as np
import pytest
import torch

from textok.metrics import InceptionFeatures, InceptionLogits, inception_score


def test_uniform_and_one_hot_predictions():
    assert inception_score(torch.zeros(20, 1008), splits=2) == pytest.approx((1.0, 0.0))
    one_hot = torch.full((40, 10), -1e4)
    one_hot[torch.arange(40), torch.arange(40) % 10] = 0.0  # confident and balanced over 10 classes
    mean, std = inception_score(one_hot, splits=1)
    assert mean == pytest.approx(10.0, rel=1e-6) and std == 0.0


def test_equals_torchmetrics_inception_score():
    from torchmetrics.image.inception import InceptionScore  # imported only here

    logits = torch.randn(64, 1008, dtype=torch.float64) * 3
    metric = InceptionScore(feature=torch.nn.Identity(), splits=1)
    metric.update(logits)
    theirs, _ = metric.compute()
    assert inception_score(logits, splits=1)[0] == pytest.approx(theirs.item(), rel=1e-10)
    # with several splits both shuffle; give torchmetrics' permutation to ours to compare
    metric = InceptionScore(feature=torch.nn.Identity(), splits=4)
    metric.update(logits)
    torch.manual_seed(7)
    theirs, _ = metric.compute()
    torch.manual_seed(7)
    perm = torch.randperm(64)
    assert inception_score(logits[perm], splits=4, shuffle=False)[0] == pytest.approx(theirs.item(), rel=1e-10)


def _torch_fidelity_like_file(path, first_conv):
    fc = torch.nn.Linear(2048, 1008)  # random classifier (the real one is not available offline)
    state = {"Conv2d_1a_3x3.conv.weight": first_conv, "fc.weight": fc.weight.detach(), "fc.bias": fc.bias.detach()}
    torch.save(state, path)
    return state


def test_ris_path_with_random_classifier(tmp_path):
    inception = InceptionFeatures()
    real_conv = inception.net.net.layers.conv.weight.detach().clone()
    state = _torch_fidelity_like_file(tmp_path / "weights-inception-2015-12-05-6726825d.pth", real_conv)
    head = InceptionLogits.from_file(tmp_path / "weights-inception-2015-12-05-6726825d.pth", inception)
    images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    feats = inception(images)
    logits = head(feats)
    torch.testing.assert_close(logits, feats @ state["fc.weight"].T)  # no bias, as the TF graph's MatMul
    mean, std = inception_score(logits, splits=2)
    assert 1.0 <= mean <= 4.0 and std >= 0.0

    _torch_fidelity_like_file(tmp_path / "other.pth", torch.randn_like(real_conv))
    with pytest.warns(RuntimeWarning, match="first convolution differs"):
        InceptionLogits.from_file(tmp_path / "other.pth", inception)


class _NotATensor:
    pass


def test_refuses_bad_weight_files(tmp_path):
    torch.save({"fc.weight": torch.zeros(10, 2048)}, tmp_path / "small.pth")
    with pytest.raises(ValueError, match="1008"):
        InceptionLogits.from_file(tmp_path / "small.pth")
    torch.save({"something": torch.zeros(1)}, tmp_path / "nofc.pth")
    with pytest.raises(ValueError, match="fc.weight"):
        InceptionLogits.from_file(tmp_path / "nofc.pth")
    torch.save({"fc.weight": _NotATensor()}, tmp_path / "code.pth")  # needs unpickling arbitrary classes
    with pytest.raises(ValueError, match="tensor-only"):
        InceptionLogits.from_file(tmp_path / "code.pth")
    with pytest.raises(FileNotFoundError):
        InceptionLogits.from_file(tmp_path / "missing.pth")
    with pytest.raises(ValueError, match="splits"):
        inception_score(np.zeros((3, 5)), splits=4)


def test_classifier_weights_are_found_in_the_cache(tmp_path, monkeypatch):
    from textok.metrics.inception_score import CLASSIFIER_FILE, find_classifier_weights

    monkeypatch.setenv("TEXTOK_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    assert find_classifier_weights() is None
    target = tmp_path / "hub" / "checkpoints" / CLASSIFIER_FILE
    target.parent.mkdir(parents=True)
    target.write_bytes(b"x")
    assert find_classifier_weights() == target
