"""LPIPS: parity with the reference ``lpips`` package (VGG, v0.1) and basic properties.

The reference cannot be imported here (it needs torchvision). Its values below were produced
by ``tests/fixtures/lpips_reference.py`` in a throwaway venv (torch 2.14.1, torchvision 0.29.1,
lpips 0.1.4, numpy 2.4.6; x86_64 CPU; 2026-11-25) from the same VGG16 kernels and the same
image pairs, which this test builds with that script's ``make_pairs``.
"""

import importlib.util
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from textok.losses import LPIPS
from textok.losses.lpips import load_numpy_pickle

REFERENCE = {  # lpips.LPIPS(net="vgg")(x, y), per pair
    "noise64": [0.32883996, 0.34115553],
    "photo64": [0.25008041, 0.67472756, 0.67974973],
    "photo32": [0.10070568, 0.41123903],
}


def _make_pairs():
    path = Path(__file__).resolve().parents[1] / "fixtures" / "lpips_reference.py"
    spec = importlib.util.spec_from_file_location("lpips_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_pairs()


@pytest.fixture(scope="module")
def lpips():
    return LPIPS()


def test_lpips_matches_reference_package(lpips):
    pairs = _make_pairs()
    assert set(pairs) == set(REFERENCE)
    with torch.no_grad():
        for name, (x, y) in pairs.items():
            got = lpips(torch.from_numpy(x), torch.from_numpy(y))
            assert got.shape == (x.shape[0],)
            np.testing.assert_allclose(got.numpy(), REFERENCE[name], atol=1e-4, rtol=0, err_msg=name)


def test_lpips_of_identical_images_is_zero_and_symmetric(lpips):
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    y = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.equal(lpips(x, x), torch.zeros(2))
        torch.testing.assert_close(lpips(x, y), lpips(y, x))
        assert (lpips(x, y) > 0).all()


def test_lpips_is_frozen_but_passes_gradients_to_inputs(lpips):
    assert list(lpips.parameters()) == [] and lpips.state_dict() == {}
    lpips.train()
    assert not lpips.training
    x = (torch.rand(1, 3, 32, 32) * 2 - 1).requires_grad_(True)
    lpips(x, torch.zeros(1, 3, 32, 32)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_lpips_rejects_mismatched_shapes(lpips):
    with pytest.raises(ValueError, match="same shape"):
        lpips(torch.zeros(1, 3, 32, 32), torch.zeros(1, 3, 16, 16))


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_numpy_pickle_loader_refuses_other_globals(tmp_path):
    good = tmp_path / "good.ckpt"
    good.write_bytes(pickle.dumps({"a": {"w": np.ones((2, 3), np.float32)}}))
    flat = load_numpy_pickle(good)
    assert list(flat) == ["a/w"] and flat["a/w"].shape == (2, 3)
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(pickle.dumps({"a": _Evil()}))
    with pytest.raises(ValueError, match="refusing to load global builtins.print"):
        load_numpy_pickle(bad)


def test_lpips_under_bf16_autocast_stays_close(lpips):
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    y = (x + 0.2 * torch.randn_like(x)).clamp(-1, 1)
    with torch.no_grad():
        full = lpips(x, y)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            half = lpips(x, y)
    assert half.dtype == torch.float32
    torch.testing.assert_close(half, full, atol=5e-3, rtol=0)
