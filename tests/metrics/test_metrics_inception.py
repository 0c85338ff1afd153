"""The FID Inception network (the real pinned TorchScript) on a handful of small images."""

import numpy as np
import pytest
import torch

from textok.metrics import InceptionFeatures, reference_stats, resize_tf1_bilinear


@pytest.fixture(scope="module")
def inception():
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    return InceptionFeatures()


def _tf1_resize_reference(img: np.ndarray, out: int) -> np.ndarray:
    """TensorFlow 1.x resize_bilinear (align_corners=False, legacy): source = dest * in / out,
    the upper neighbour clamped to the last row/column (tensorflow/core/kernels/image_resizer_state.h)."""
    H, W = img.shape[-2:]
    ys, xs = np.arange(out) * H / out, np.arange(out) * W / out
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, H - 1), np.minimum(x0 + 1, W - 1)
    dy, dx = (ys - y0)[:, None], (xs - x0)[None]
    rows0, rows1 = img[..., y0, :], img[..., y1, :]
    top = rows0[..., x0] * (1 - dx) + rows0[..., x1] * dx
    bottom = rows1[..., x0] * (1 - dx) + rows1[..., x1] * dx
    return top * (1 - dy) + bottom * dy


@pytest.mark.parametrize("size", [(32, 32), (64, 48), (299, 299), (400, 320)])
def test_resize_is_tensorflow1_bilinear(size):
    x = torch.randint(0, 256, (2, 3, *size)).double()
    ours = resize_tf1_bilinear(x, 299).numpy()
    np.testing.assert_allclose(ours, _tf1_resize_reference(x.numpy(), 299), atol=1e-9)


def test_features_shape_and_input_forms(inception):
    x8 = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    feats = inception(x8)
    assert feats.shape == (2, 2048) and feats.dtype == torch.float32
    assert torch.isfinite(feats).all() and (feats >= 0).all()  # average of ReLU outputs
    assert not torch.allclose(feats[0], feats[1])
    # the same images as floats in [-1, 1] and as ADM's uint8 [N, H, W, 3] give the same features
    torch.testing.assert_close(inception(x8.float() / 127.5 - 1), feats)
    hwc = x8.permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(inception.extract_array(hwc, batch_size=1, progress=False), feats.double().numpy(),
                               rtol=1e-5, atol=1e-5)  # batch size does not matter either


def test_network_input_is_scaled_like_the_tf_graph(inception):
    x8 = torch.tensor([0, 128, 255], dtype=torch.uint8).view(1, 1, 1, 3).expand(1, 3, 299, 3).contiguous()
    x = inception.preprocess(torch.nn.functional.pad(x8, (0, 296)))
    assert x.shape == (1, 3, 299, 299)
    assert x[0, 0, 0, :3].tolist() == [-1.0, 0.0, 127 / 128]


def test_reference_stats_from_an_adm_image_batch(inception, tmp_path):
    from skimage import data

    photo = data.astronaut()  # 512 x 512 x 3
    crops = np.stack([photo[y : y + 48, x : x + 48] for y, x in [(0, 0), (100, 200), (300, 50)]])
    feats = inception.extract_array(crops, progress=False)
    np.savez(tmp_path / "ref.npz", arr_0=crops)  # an ADM reference batch: images only
    stats = reference_stats(tmp_path / "ref.npz", inception, progress=False)
    np.testing.assert_allclose(stats.mu, feats.mean(0), rtol=1e-6)
    assert stats.features.shape == (3, 2048) and stats.num == 3
