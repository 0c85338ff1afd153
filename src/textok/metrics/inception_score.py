"""Inception Score (Salimans et al. 2016) and, on reconstructions, rIS.

IS needs the Inception network's 1008-way classifier, which the FID TorchScript we ship does
not include. The user supplies it from a local file: torch-fidelity's
``weights-inception-2015-12-05-6726825d.pth`` (a plain state dict of the same TF 2015-12-05
network; loaded with ``torch.load(weights_only=True)``, never unpickled as code) or a
``.safetensors`` file holding ``fc.weight`` [1008, 2048].

Only the classifier matrix is used: logits = pool3 @ fc.weight^T *without* the bias, which is
how the original IS code (``softmax/logits/MatMul``), ADM's evaluator and torch-fidelity's
``logits_unbiased`` compute them. The pool3 features come from the FID network
(``InceptionFeatures``), which is the same TF graph; when the file also carries the
convolution weights (torch-fidelity's does), ``InceptionLogits.from_file(..., features=...)``
compares its first kernel with the FID network's and warns if they differ.

No such file exists offline here; the tests use a randomly initialised classifier.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch

CLASSIFIER_FILE = "weights-inception-2015-12-05-6726825d.pth"  # torch-fidelity's release asset
NUM_CLASSES = 1008  # the 2015-12-05 graph's 1000 ImageNet classes + 8 unused
FC_KEY = "fc.weight"
FIRST_CONV_KEY = "Conv2d_1a_3x3.conv.weight"  # torch-fidelity's name for the graph's first kernel


def find_classifier_weights() -> Path | None:
    """torch-fidelity's Inception weights if this machine already has them, else None.

    Looked for in ``$TEXTOK_CACHE/inception/`` (default ``~/.cache/textok``) and in torch hub's
    checkpoint folder, where torch-fidelity itself keeps its download.
    """
    from ..assets import cache_dir

    candidates = [cache_dir() / "inception" / CLASSIFIER_FILE, Path(torch.hub.get_dir()) / "checkpoints" / CLASSIFIER_FILE]
    return next((p for p in candidates if p.is_file()), None)


def load_classifier_weights(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Tensors of a torch-fidelity Inception ``.pth`` or a ``.safetensors`` file (no code is unpickled)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Inception classifier weights not found: {path}")
    if path.suffix == ".safetensors":
        from ..io import load_state_dict

        return load_state_dict(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises UnpicklingError / RuntimeError for non-tensor pickles
        raise ValueError(f"{path}: not a tensor-only PyTorch state dict ({type(e).__name__}: {str(e)[:200]})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: expected a state dict of tensors")
    return state


class InceptionLogits(torch.nn.Module):
    """pool3 features [B, D] -> logits [B, C] with ``weight`` [C, D]; for the TF graph's
    ``softmax/logits/MatMul`` C = 1008, D = 2048."""

    def __init__(self, weight: torch.Tensor):
        super().__init__()
        if weight.ndim != 2:
            raise ValueError(f"classifier weight must be [classes, features], got {tuple(weight.shape)}")
        self.register_buffer("weight", weight.detach().float().clone())

    @classmethod
    def from_file(cls, path: str | os.PathLike, features=None) -> "InceptionLogits":
        """Load ``fc.weight`` from ``path``; with ``features`` (an ``InceptionFeatures``), check the
        file's first convolution kernel against the FID network's."""
        state = load_classifier_weights(path)
        if FC_KEY not in state:
            raise ValueError(f"{path}: no {FC_KEY!r} tensor (keys: {sorted(state)[:8]}...); "
                             "expected torch-fidelity's Inception 2015-12-05 weights")
        if state[FC_KEY].shape != (NUM_CLASSES, 2048):
            raise ValueError(f"{path}: {FC_KEY} has shape {tuple(state[FC_KEY].shape)}, expected ({NUM_CLASSES}, 2048)")
        if features is not None and FIRST_CONV_KEY in state:
            ours = features.net.net.layers.conv.weight.detach().cpu().float()
            theirs = state[FIRST_CONV_KEY].float()
            if ours.shape != theirs.shape or not torch.allclose(ours, theirs, atol=1e-5):
                warnings.warn(f"{path}: its first convolution differs from the FID network's; the classifier "
                              "may not belong to these pool3 features", RuntimeWarning, stacklevel=2)
        return cls(state[FC_KEY])

    @classmethod
    def resolve(cls, spec, features=None) -> "InceptionLogits | None":
        """``None``, an ``InceptionLogits``, or a weights file path -> head (or None)."""
        if spec is None or isinstance(spec, cls):
            return spec
        return cls.from_file(spec, features)

    def forward(self, features: torch.Tensor | np.ndarray) -> torch.Tensor:
        f = torch.as_tensor(features, device=self.weight.device).float()
        if f.shape[-1] != self.weight.shape[1]:
            raise ValueError(f"features have {f.shape[-1]} dims, the classifier expects {self.weight.shape[1]}")
        return f @ self.weight.T


def inception_score(logits: torch.Tensor | np.ndarray, splits: int = 10, shuffle: bool = True,
                    seed: int = 2020) -> tuple[float, float]:
    """IS from logits [N, C]: (mean, std) of ``exp(E_x KL(p(y|x) || p(y)))`` over ``splits`` groups.

    As torch-fidelity: float64 softmax, samples shuffled with ``np.random.RandomState(seed)``,
    group ``i`` = rows ``[i N // splits, (i + 1) N // splits)``, population std.
    """
    logits = torch.as_tensor(np.asarray(logits) if not isinstance(logits, torch.Tensor) else logits).double().cpu()
    if logits.ndim != 2:
        raise ValueError(f"logits must be [N, C], got shape {tuple(logits.shape)}")
    N = logits.shape[0]
    if not 1 <= splits <= N:
        raise ValueError(f"splits must be between 1 and the number of samples ({N}), got {splits}")
    if shuffle:
        logits = logits[torch.from_numpy(np.random.RandomState(seed).permutation(N))]
    log_p = logits.log_softmax(dim=1)
    scores = []
    for i in range(splits):
        chunk = log_p[i * N // splits : (i + 1) * N // splits]
        log_q = chunk.exp().mean(dim=0, keepdim=True).log()
        kl = (chunk.exp() * (chunk - log_q)).sum(dim=1).mean()
        scores.append(float(kl.exp()))
    return float(np.mean(scores)), float(np.std(scores))
