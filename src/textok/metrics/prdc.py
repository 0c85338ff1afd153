"""Improved precision and recall (Kynkäänniemi et al. 2019) on k-NN manifolds, k = 3.

Each set's manifold is the union of balls around its points whose radius is the distance to
the point's k-th nearest neighbour in the same set (the point itself not counted). Precision
is the fraction of generated samples inside the real manifold; recall is the fraction of real
samples inside the generated manifold. A point exactly on a ball's surface counts as inside
(``<=``, as in the authors' code and ADM's evaluator). Distances are Euclidean on the
Inception pool3 features, computed in blocks so that memory stays at ``block x N``.
"""

from __future__ import annotations

import numpy as np
import torch


def _as_tensor(x, device, dtype) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x), dtype=dtype, device=device)
    if t.ndim != 2:
        raise ValueError(f"features must be [N, D], got shape {tuple(t.shape)}")
    return t


def knn_radii(features: torch.Tensor, k: int = 3, block: int = 4096) -> torch.Tensor:
    """[N, D] -> [N] distance from each point to its k-th nearest other point."""
    if features.shape[0] <= k:
        raise ValueError(f"need more than k={k} points for k-NN radii, got {features.shape[0]}")
    radii = [torch.cdist(features[i : i + block], features).kthvalue(k + 1, dim=1).values  # +1: itself at 0
             for i in range(0, features.shape[0], block)]
    return torch.cat(radii)


def manifold_coverage(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, block: int = 4096) -> torch.Tensor:
    """[M, D] points, [N, D] centres with [N] radii -> bool [M]: point inside any ball."""
    inside = [(torch.cdist(points[i : i + block], centres) <= radii[None]).any(dim=1)
              for i in range(0, points.shape[0], block)]
    return torch.cat(inside)


def precision_recall(real: np.ndarray | torch.Tensor, fake: np.ndarray | torch.Tensor, k: int = 3,
                     device: str | torch.device = "cpu", dtype: torch.dtype = torch.float64,
                     block: int = 4096) -> dict[str, float]:
    """Precision and recall of ``fake`` [M, D] against ``real`` [N, D]: {"precision", "recall"}."""
    real_t, fake_t = _as_tensor(real, device, dtype), _as_tensor(fake, device, dtype)
    if real_t.shape[1] != fake_t.shape[1]:
        raise ValueError(f"feature sizes differ: real {real_t.shape[1]} vs fake {fake_t.shape[1]}")
    real_radii, fake_radii = knn_radii(real_t, k, block), knn_radii(fake_t, k, block)
    precision = manifold_coverage(fake_t, real_t, real_radii, block).double().mean()
    recall = manifold_coverage(real_t, fake_t, fake_radii, block).double().mean()
    return {"precision": float(precision), "recall": float(recall)}
