"""Fréchet distance: self ~0, Gaussian closed forms, parity with torchmetrics; the ADM .npz layout."""

import numpy as np
import pytest
import torch
from scipy import linalg

from textok.metrics import (Stats, feature_stats, fid_from_features, frechet_distance, frechet_distance_to_features,
                            load_stats, save_stats)


def _spd(rng, d):
    a = rng.normal(size=(d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def test_fid_of_a_set_against_itself_is_zero():
    feats = np.random.default_rng(0).normal(size=(300, 16))
    assert abs(fid_from_features(feats, feats)) < 1e-8


def test_diagonal_gaussians_closed_form():
    # commuting covariances: FD = |m1 - m2|^2 + sum (sqrt(a) - sqrt(b))^2
    rng = np.random.default_rng(1)
    m1, m2 = rng.normal(size=8), rng.normal(size=8)
    a, b = rng.uniform(0.1, 3, 8), rng.uniform(0.1, 3, 8)
    expected = np.sum((m1 - m2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(m1, np.diag(a), m2, np.diag(b)) == pytest.approx(expected, rel=1e-10)


def test_general_gaussians_closed_form_and_samples():
    # W2^2 between Gaussians: |dm|^2 + Tr(S1 + S2 - 2 (S2^1/2 S1 S2^1/2)^1/2), a different but equal form
    rng = np.random.default_rng(2)
    d = 6
    m1, m2, s1, s2 = rng.normal(size=d), rng.normal(size=d), _spd(rng, d), _spd(rng, d)
    r2 = linalg.sqrtm(s2).real
    expected = np.sum((m1 - m2) ** 2) + np.trace(s1 + s2 - 2 * linalg.sqrtm(r2 @ s1 @ r2).real)
    assert frechet_distance(m1, s1, m2, s2) == pytest.approx(expected, rel=1e-8)
    # estimated from samples it converges to the same number
    x = rng.multivariate_normal(m1, s1, size=20000)
    y = rng.multivariate_normal(m2, s2, size=20000)
    assert fid_from_features(x, y) == pytest.approx(expected, rel=0.05)


def test_equals_torchmetrics_frechet_distance():
    from torchmetrics.image.fid import _compute_fid  # a well-known FID package, imported only here

    rng = np.random.default_rng(3)
    f1, f2 = rng.gamma(2.0, size=(400, 32)), rng.gamma(2.2, size=(350, 32)) + 0.1
    (mu1, s1), (mu2, s2) = feature_stats(f1), feature_stats(f2)
    theirs = _compute_fid(*(torch.from_numpy(a) for a in (mu1, s1, mu2, s2))).item()
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(theirs, rel=1e-8)


def test_to_features_equals_the_square_root_form_with_fewer_images_than_dimensions():
    """The low-rank form (no D x D sqrtm) against the reference formula and torchmetrics, N2 < D."""
    from torchmetrics.image.fid import _compute_fid

    rng = np.random.default_rng(7)
    d = 96
    real = rng.gamma(2.0, size=(400, d))  # full-rank reference statistics, as the originals' at 2048-d
    for n in (40, 95, 96):  # sigma2 of rank n - 1 < d: sigma1 @ sigma2 is singular
        rec = rng.gamma(2.1, size=(n, d)) + 0.05
        mu1, s1 = feature_stats(real)
        fast = frechet_distance_to_features(mu1, s1, rec)
        # the exact value: Tr sqrt(s1 s2) from the eigenvalues of the product
        mu2, s2 = feature_stats(rec)
        exact = (np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2)
                 - 2 * np.sqrt(np.clip(np.linalg.eigvals(s1 @ s2).real, 0, None)).sum())
        assert fast == pytest.approx(exact, rel=1e-7)  # the eigvals of a singular product carry ~1e-6 noise
        assert fast == pytest.approx(frechet_distance(mu1, s1, mu2, s2), rel=1e-6)
        theirs = _compute_fid(*(torch.from_numpy(a) for a in (mu1, s1, mu2, s2))).item()
        assert fast == pytest.approx(theirs, rel=1e-6)
        assert fid_from_features(real, rec) == fid_from_features(rec, real) == pytest.approx(fast, rel=1e-12)
    # more images than dimensions: the reference formula itself
    rec = rng.gamma(2.1, size=(300, 32))
    mu1, s1 = feature_stats(real[:, :32])
    assert frechet_distance_to_features(mu1, s1, rec) == frechet_distance(mu1, s1, *feature_stats(rec))
    with pytest.raises(ValueError, match="do not fit"):
        frechet_distance_to_features(mu1, s1, rng.normal(size=(10, 64)))
    with pytest.raises(ValueError, match="N >= 2"):
        frechet_distance_to_features(mu1, s1, np.zeros((1, 32)))


def test_few_samples_singular_covariance_still_gives_a_number():
    rng = np.random.default_rng(4)
    f1, f2 = rng.normal(size=(10, 64)), rng.normal(size=(12, 64)) + 0.5
    value = fid_from_features(f1, f2)
    assert np.isfinite(value) and value > 0


def test_shape_errors():
    with pytest.raises(ValueError, match="differ in shape"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    with pytest.raises(ValueError, match="N >= 2"):
        feature_stats(np.zeros((1, 3)))


def test_stats_roundtrip_in_adm_layout(tmp_path):
    feats = np.random.default_rng(5).normal(size=(50, 8)).astype(np.float32)
    path = save_stats(tmp_path / "ref.npz", Stats.from_features(feats, split="train"))
    with np.load(path) as raw:  # what ADM's evaluator reads
        assert {"mu", "sigma"} <= set(raw.files)
        assert raw["mu"].dtype == np.float64 and raw["sigma"].shape == (8, 8)
    back = load_stats(path)
    np.testing.assert_allclose(back.mu, feats.astype(np.float64).mean(0))
    np.testing.assert_array_equal(back.features, feats)
    assert back.num == 50 and back.info["split"] == "train"
    # an ADM-style file with only mu/sigma loads too
    np.savez(tmp_path / "adm.npz", mu=back.mu, sigma=back.sigma)
    assert load_stats(tmp_path / "adm.npz").features is None


def test_features_only_file_recomputes_the_moments(tmp_path):
    feats = np.random.default_rng(6).gamma(2.0, size=(40, 16)).astype(np.float32)
    stats = Stats.from_features(feats, split="val")
    path = save_stats(tmp_path / "small.npz", stats, moments=False, features_dtype=np.float16)
    with np.load(path) as raw:
        assert set(raw.files) == {"features", "info"} and raw["features"].dtype == np.float16
    back = load_stats(path)
    assert back.num == 40 and back.info["split"] == "val" and back.features.dtype == np.float32
    np.testing.assert_allclose(back.mu, stats.mu, rtol=1e-3)
    np.testing.assert_allclose(back.sigma, stats.sigma, rtol=1e-2, atol=1e-3)
    other = np.random.default_rng(7).gamma(2.1, size=(30, 16))
    assert frechet_distance_to_features(back.mu, back.sigma, other) == pytest.approx(
        frechet_distance_to_features(stats.mu, stats.sigma, other), rel=1e-3)
    with pytest.raises(ValueError, match="needs per-image features"):
        save_stats(tmp_path / "none.npz", Stats(stats.mu, stats.sigma), moments=False)
    np.savez(tmp_path / "nan.npz", features=np.full((3, 4), np.nan, np.float32))
    with pytest.raises(ValueError, match="not a finite"):
        load_stats(tmp_path / "nan.npz")


def test_load_stats_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_stats(tmp_path / "missing.npz")
    np.savez(tmp_path / "images.npz", arr_0=np.zeros((2, 8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="arr_0"):
        load_stats(tmp_path / "images.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a readable"):
        load_stats(tmp_path / "junk.npz")
    with pytest.raises(ValueError, match=".npz"):
        save_stats(tmp_path / "stats.pkl", Stats(np.zeros(2), np.eye(2)))


def test_adm_reference_batch_with_stats_and_images(tmp_path, tiny_features):
    """ADM's reference batches hold mu/sigma for FID and arr_0 images for precision/recall."""
    from textok.metrics import reference_stats

    images = np.random.default_rng(6).integers(0, 256, (5, 16, 16, 3), dtype=np.uint8)
    mu, sigma = np.full(64, 0.5), np.eye(64) * 2
    np.savez(tmp_path / "adm_ref.npz", arr_0=images, mu=mu, sigma=sigma)
    stats = reference_stats(tmp_path / "adm_ref.npz", tiny_features, progress=False)
    np.testing.assert_array_equal(stats.mu, mu)  # FID uses the stored statistics
    assert stats.features.shape == (5, 64)  # precision/recall use features of the stored images
    assert reference_stats(tmp_path / "adm_ref.npz", tiny_features, features=False).features is None
