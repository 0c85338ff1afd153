"""Per-image reconstruction metrics on [0, 255]-quantised images: PSNR and SSIM.

Both are computed on what a user would save and look at: images in [-1, 1] are mapped to
uint8 with rounding (``textok.data.transforms.to_uint8``'s rule) before comparing, so a
reconstruction scores the same whether it is scored in memory or re-read from a PNG.

- ``psnr(x, y)``: ``10 log10(255^2 / MSE)`` per image over all pixels and channels
  (``inf`` for identical images), as ``skimage.metrics.peak_signal_noise_ratio`` with
  ``data_range=255`` computes it.
- ``ssim(x, y)``: Wang et al. (2004) with an 11-tap Gaussian window (sigma 1.5, truncated at
  3.5 sigma), K1 = 0.01, K2 = 0.03, population (not sample) covariances, averaged over the
  valid region and the channels: identical to scikit-image's
  ``structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
  data_range=255, channel_axis=-1)`` (the test checks it to 1e-4).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def quantize(images: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Images -> float64 [B, 3, H, W] holding integers in [0, 255].

    Accepts float tensors in [-1, 1] (clamped, then ``round((x + 1) * 127.5)``) or uint8
    tensors / arrays [B, 3, H, W]; a uint8 numpy array [B, H, W, 3] (the ADM sample layout) is
    transposed.
    """
    if isinstance(images, np.ndarray):
        if images.dtype != np.uint8:
            raise ValueError(f"numpy images must be uint8, got {images.dtype}")
        if images.ndim == 4 and images.shape[-1] == 3 and images.shape[1] != 3:
            images = images.transpose(0, 3, 1, 2)
        images = torch.from_numpy(np.ascontiguousarray(images))
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected images [B, 3, H, W], got shape {tuple(images.shape)}")
    if images.dtype == torch.uint8:
        return images.to(torch.float64)
    if not images.is_floating_point():
        raise ValueError(f"images must be uint8 or float in [-1, 1], got {images.dtype}")
    return ((images.detach().to(torch.float64).clamp(-1, 1) + 1) * 127.5).round()


def _pair(x, y) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = quantize(x), quantize(y)
    if x.shape != y.shape:
        raise ValueError(f"image batches differ in shape: {tuple(x.shape)} vs {tuple(y.shape)}")
    return x, y.to(x.device)


def psnr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image: [B, 3, H, W] x 2 -> float64 [B]."""
    x, y = _pair(x, y)
    mse = (x - y).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(255.0**2 / mse)  # mse == 0 -> inf


def gaussian_window(sigma: float = 1.5, truncate: float = 3.5, dtype=torch.float64) -> torch.Tensor:
    """Normalised 1-D Gaussian taps of radius ``int(truncate * sigma + 0.5)`` (scipy.ndimage's rule)."""
    radius = int(truncate * sigma + 0.5)
    t = torch.arange(-radius, radius + 1, dtype=dtype)
    w = torch.exp(-0.5 * (t / sigma) ** 2)
    return w / w.sum()


def ssim(x: torch.Tensor, y: torch.Tensor, sigma: float = 1.5, truncate: float = 3.5,
         k1: float = 0.01, k2: float = 0.03) -> torch.Tensor:
    """Structural similarity per image: [B, 3, H, W] x 2 -> float64 [B] (needs H, W >= 11).

    The local statistics are Gaussian-weighted over the *valid* region only; scikit-image
    filters with reflection and then crops the window radius off each side, which leaves the
    same values.
    """
    x, y = _pair(x, y)
    C, H, W = x.shape[1:]
    w = gaussian_window(sigma, truncate).to(x.device)
    if min(H, W) < w.numel():
        raise ValueError(f"SSIM needs images of at least {w.numel()}x{w.numel()} pixels, got {H}x{W}")
    c1, c2 = (k1 * 255.0) ** 2, (k2 * 255.0) ** 2

    # One separable depthwise blur over the five maps the statistics need.
    maps = torch.cat([x, y, x * x, y * y, x * y], dim=1)  # [B, 5C, H, W]
    n = maps.shape[1]
    maps = F.conv2d(maps, w.view(1, 1, -1, 1).expand(n, 1, -1, 1), groups=n)
    maps = F.conv2d(maps, w.view(1, 1, 1, -1).expand(n, 1, 1, -1), groups=n)
    mx, my, mxx, myy, mxy = maps.split(C, dim=1)
    vx, vy, vxy = mxx - mx * mx, myy - my * my, mxy - mx * my
    s = ((2 * mx * my + c1) * (2 * vxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return s.flatten(1).mean(1)

