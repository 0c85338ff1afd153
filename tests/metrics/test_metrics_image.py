"""PSNR on hand-made pairs; SSIM against scikit-image's implementation."""

import math

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from textok.metrics import psnr, quantize, ssim


def _u8(array_hwc: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array_hwc.transpose(2, 0, 1)))[None]


def test_psnr_hand_made_pairs():
    a = torch.zeros(2, 3, 4, 4, dtype=torch.uint8)
    b = a.clone()
    b[0] += 10  # every pixel off by 10 -> MSE 100
    b[1, 0, 0, 0] = 255  # one pixel of 48 off by 255 -> MSE 255^2 / 48
    got = psnr(a, b)
    assert got[0].item() == pytest.approx(10 * math.log10(255**2 / 100))
    assert got[1].item() == pytest.approx(10 * math.log10(48))
    assert torch.isinf(psnr(a, a)).all()


def test_float_images_are_rounded_to_uint8_first():
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    x8 = quantize(x).to(torch.uint8)
    assert torch.equal(quantize(x), quantize(x8))
    # a change smaller than half a grey level disappears in the rounding
    nudged = (x8.double() / 127.5 - 1 + 0.3 / 127.5).float()
    assert torch.isinf(psnr(x8, nudged)).all()
    assert quantize(torch.tensor([-5.0, 5.0]).view(1, 1, 1, 2).expand(1, 3, 1, 2)).flatten().tolist() == [0, 255] * 3


@pytest.mark.parametrize("shape", [(24, 24), (37, 29)])
def test_ssim_matches_scikit_image(shape):
    rng = np.random.default_rng(0)
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    smooth = (127 + 100 * np.sin(xx / 3.0)[..., None] * np.cos(yy / 5.0)[..., None] * np.array([1.0, 0.6, -0.8])).astype(np.uint8)
    pairs = [
        (rng.integers(0, 256, (h, w, 3), dtype=np.uint8), rng.integers(0, 256, (h, w, 3), dtype=np.uint8)),
        (smooth, np.clip(smooth + rng.normal(0, 12, smooth.shape), 0, 255).astype(np.uint8)),
        (smooth, smooth),
    ]
    ours = ssim(torch.cat([_u8(a) for a, _ in pairs]), torch.cat([_u8(b) for _, b in pairs]))
    for i, (a, b) in enumerate(pairs):
        ref = structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                    data_range=255, channel_axis=-1)
        assert ours[i].item() == pytest.approx(ref, abs=1e-4)
    assert ours[2].item() == pytest.approx(1.0)


def test_ssim_on_a_photo_and_its_jpeg_like_degradation():
    from skimage import data

    a = data.astronaut()[::8, ::8]  # 64 x 64 x 3
    b = np.clip(a.astype(np.int16) + np.random.default_rng(1).integers(-20, 21, a.shape), 0, 255).astype(np.uint8)
    ref = structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                data_range=255, channel_axis=-1)
    assert ssim(_u8(a), _u8(b)).item() == pytest.approx(ref, abs=1e-4)


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match="differ in shape"):
        psnr(torch.zeros(1, 3, 8, 8), torch.zeros(2, 3, 8, 8))
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        psnr(torch.zeros(3, 8, 8), torch.zeros(3, 8, 8))
