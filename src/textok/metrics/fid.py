"""Fréchet distance between Gaussians fitted to features, and reference statistics files.

``frechet_distance`` is the formula of Heusel et al. (2017) exactly as ADM's evaluator and
pytorch-fid compute it: float64, ``scipy.linalg.sqrtm`` of ``sigma1 @ sigma2``, and when that
is singular (few samples) or has a noticeable imaginary part, a retry with ``eps`` added to
both diagonals.

Statistics files use ADM's reference-batch arrays: an ``.npz`` with ``mu`` [2048] and
``sigma`` [2048, 2048] (float64). ``reference_stats`` reads ADM's published batches
(``VIRTUAL_imagenet256_labeled.npz`` etc.: mu/sigma plus ``arr_0`` images for precision and
recall). ``save_stats`` writes mu/sigma plus, optionally, ``features`` (float32 [N, 2048], for
precision/recall, in place of ADM's images) and ``info`` (a JSON string: sample count,
preprocessing, and where ``dataset_stats`` wrote it, the SHA-256 of the images and of the
Inception network, which ``evaluate_tokenizer`` checks). A features-only file
(``moments=False``) is the compact form for shipping a small reference set.
"""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
from pathlib import Path

import numpy as np
from scipy import linalg


def _feature_array(features: np.ndarray) -> np.ndarray:
    """``features`` as float64 [N >= 2, D], or a ValueError saying what it got."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"need features [N >= 2, D] for statistics, got shape {features.shape}")
    return features


def feature_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[N, D] -> (mu [D], sigma [D, D]) in float64; sigma is the unbiased covariance (as ADM's)."""
    features = _feature_array(features)
    return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """``||mu1 - mu2||^2 + Tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2))`` in float64."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape:
        raise ValueError(f"mean vectors differ in shape: {mu1.shape} vs {mu2.shape}")
    if sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
        raise ValueError(f"covariances {sigma1.shape} / {sigma2.shape} do not fit means of size {mu1.size}")
    diff = mu1 - mu2

    def sqrt_product(offset: float) -> np.ndarray:
        eye = np.eye(sigma1.shape[0]) * offset
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scipy warns on singular input; we check the result
            return linalg.sqrtm((sigma1 + eye) @ (sigma2 + eye))

    covmean = sqrt_product(0.0)
    if not np.isfinite(covmean).all() or (np.iscomplexobj(covmean) and not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3)):
        warnings.warn(f"FID: singular covariance product; adding {eps} to the diagonals", RuntimeWarning, stacklevel=2)
        covmean = sqrt_product(eps)
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            m = np.max(np.abs(covmean.imag))
            raise ValueError(f"FID: matrix square root has an imaginary component of {m:.3g}; use more samples")
        covmean = covmean.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def frechet_distance_to_features(mu1: np.ndarray, sigma1: np.ndarray, features2: np.ndarray) -> float:
    """``frechet_distance(mu1, sigma1, *feature_stats(features2))`` without the D x D square root
    when the feature set has fewer rows than columns (``features2`` [N2, D], N2 <= D).

    Why: ``sqrtm`` of a 2048 x 2048 product takes 20 s on an idle 2-core CPU
    (``benchmarks/bench_fid.py``), and an rFID over a few hundred images needs it once per model. With ``A = (features2 - mu2) / sqrt(N2 - 1)``,
    sigma2 = A^T A, so the non-zero eigenvalues of sigma1 sigma2 are those of the symmetric
    N2 x N2 matrix ``A sigma1 A^T``, and Tr((sigma1 sigma2)^(1/2)) is the sum of their square
    roots: exact, O(N2 D^2) instead of O(D^3). It equals ``frechet_distance`` to ~1e-8 relative
    where that needs no ``eps`` retry; where it would retry (a singular product), this is the
    exact value the retry approximates. With N2 > D it calls ``frechet_distance``.
    """
    features2 = _feature_array(features2)
    n, d = features2.shape
    if n > d:
        return frechet_distance(mu1, sigma1, *feature_stats(features2))
    mu1 = np.atleast_1d(np.asarray(mu1, np.float64))
    sigma1 = np.atleast_2d(np.asarray(sigma1, np.float64))
    if mu1.shape != (d,) or sigma1.shape != (d, d):
        raise ValueError(f"statistics of shape {mu1.shape} / {sigma1.shape} do not fit features of width {d}")
    mu2 = features2.mean(axis=0)
    a = (features2 - mu2) / np.sqrt(n - 1)
    m = a @ sigma1 @ a.T
    eig = np.linalg.eigvalsh((m + m.T) / 2)  # symmetric PSD: tiny negative round-off is clipped
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.square(a).sum() - 2 * np.sqrt(np.clip(eig, 0, None)).sum())


def fid_from_features(features1: np.ndarray, features2: np.ndarray) -> float:
    """FID between two feature sets [N1, D], [N2, D] (symmetric: the smaller set is the one kept as features)."""
    if len(features1) < len(features2):
        features1, features2 = features2, features1
    return frechet_distance_to_features(*feature_stats(features1), features2)


@dataclasses.dataclass
class Stats:
    """Reference statistics: ``mu`` [D], ``sigma`` [D, D], optional ``features`` [N, D], ``info``."""

    mu: np.ndarray
    sigma: np.ndarray
    features: np.ndarray | None = None
    info: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def from_features(cls, features: np.ndarray, keep_features: bool = True, **info) -> "Stats":
        mu, sigma = feature_stats(features)
        info.setdefault("num", int(features.shape[0]))
        return cls(mu, sigma, np.asarray(features, np.float32) if keep_features else None, info)

    @property
    def num(self) -> int | None:
        """Images behind ``mu``/``sigma`` when recorded (ADM's files do not say)."""
        return self.info.get("num")


def save_stats(path: str | os.PathLike, stats: Stats, moments: bool = True, features_dtype=np.float32) -> Path:
    """Write ``stats`` as an ADM-layout ``.npz`` (atomically): mu, sigma [, features, info].

    ``moments=False`` writes only ``features`` (in ``features_dtype``) and ``info``: for a few
    hundred images that is ~50x smaller than sigma's 2048 x 2048 float64 (32 MB), small enough to
    ship beside a checkpoint; ``load_stats`` recomputes mu and sigma from the features. ADM's
    evaluator cannot read such a file (it wants mu/sigma).
    """
    from ..io import atomic_path

    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"{path}: statistics files are .npz (ADM layout)")
    if not moments and stats.features is None:
        raise ValueError(f"{path}: moments=False needs per-image features, and these statistics have none")
    arrays = {"mu": np.asarray(stats.mu, np.float64), "sigma": np.asarray(stats.sigma, np.float64)} if moments else {}
    if stats.features is not None:
        arrays["features"] = np.asarray(stats.features, features_dtype)
    if stats.info:
        arrays["info"] = np.array(json.dumps(stats.info, sort_keys=True))
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
    return path


def _open_npz(path: str | os.PathLike):
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"statistics file not found: {path}")
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:  # EOFError: a zero-byte file
        raise ValueError(f"{path}: not a readable .npz file ({type(e).__name__}: {e})") from None
    if not isinstance(data, np.lib.npyio.NpzFile):  # a .npy holds one bare array
        raise ValueError(f"{path}: a single {getattr(data, 'dtype', '?')} array {getattr(data, 'shape', '')}, "
                         f"not an .npz archive")
    return data


def load_stats(path: str | os.PathLike) -> Stats:
    """Read ``mu``/``sigma`` (and ``features``/``info`` if present) from an ADM-layout ``.npz``;
    a file with only ``features`` (``save_stats(..., moments=False)``) gets mu/sigma computed."""
    with _open_npz(path) as data:
        keys = set(data.files)
        features = data["features"].astype(np.float32) if "features" in keys else None
        info = json.loads(str(data["info"])) if "info" in keys else {}
        if not {"mu", "sigma"} <= keys and features is not None:
            if features.ndim != 2 or features.shape[0] < 2 or not np.isfinite(features).all():
                raise ValueError(f"{path}: features {features.shape} are not a finite [N >= 2, D] array")
            mu, sigma = feature_stats(features)
        elif not {"mu", "sigma"} <= keys:
            hint = " (it holds images under arr_0: use reference_stats)" if "arr_0" in keys else ""
            raise ValueError(f"{path}: no 'mu'/'sigma' arrays (keys: {sorted(keys)}){hint}")
        else:
            mu, sigma = data["mu"].astype(np.float64), data["sigma"].astype(np.float64)
    if mu.ndim != 1 or sigma.shape != (mu.size, mu.size):
        raise ValueError(f"{path}: mu {mu.shape} and sigma {sigma.shape} are not [D] and [D, D]")
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):  # else "FID nan", exit 0
        raise ValueError(f"{path}: mu or sigma holds non-finite values (NaN / inf)")
    if features is not None and (features.ndim != 2 or features.shape[1] != mu.size):
        raise ValueError(f"{path}: features {features.shape} do not match mu of size {mu.size}")
    return Stats(mu, sigma, features, info)


def load_images_npz(path: str | os.PathLike, key: str = "arr_0") -> np.ndarray:
    """uint8 images [N, H, W, 3] from an ADM sample / reference batch ``.npz``."""
    with _open_npz(path) as data:
        if key not in data.files:
            raise ValueError(f"{path}: no {key!r} array of images (keys: {sorted(data.files)})")
        images = data[key]
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"{path}: {key} must be uint8 [N, H, W, 3], got {images.dtype} {images.shape}")
    return images


def reference_stats(path: str | os.PathLike, extractor=None, batch_size: int = 50, progress: bool = True,
                    features: bool = True) -> Stats:
    """Reference statistics from an ``.npz``, as ADM's evaluator reads its reference batches.

    ``mu``/``sigma`` are taken as stored when present (FID); Inception features (precision /
    recall) are taken from ``features``, else computed from the ``arr_0`` images when the file
    has them and ``features`` is True (ADM's batches hold 10k images for this), else left out.
    A file with only images gets everything computed. ``extractor`` is an ``InceptionFeatures``
    (created on CPU when needed and not given).
    """
    with _open_npz(path) as data:
        keys = set(data.files)
    stats = load_stats(path) if {"mu", "sigma"} <= keys else None
    if stats is not None and (stats.features is not None or not features or "arr_0" not in keys):
        return stats
    images = load_images_npz(path)
    if extractor is None:
        from .inception import InceptionFeatures

        extractor = InceptionFeatures()
    feats = extractor.extract_array(images, batch_size=batch_size, progress=progress)
    if stats is not None:  # FID keeps the stored statistics (they may come from more images)
        stats.features = feats.astype(np.float32)
        return stats
    return Stats.from_features(feats, source=str(path), image_size=int(images.shape[1]))
