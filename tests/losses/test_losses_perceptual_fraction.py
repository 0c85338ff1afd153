"""loss.perceptual_fraction: LPIPS on the first ceil(f * B) images of the micro-batch."""

import math

import pytest
import torch
import torch.nn.functional as F

from textok import TexTok, TexTokConfig
from textok.losses import LPIPS, LossConfig, TexTokLoss


@pytest.fixture(scope="module")
def lpips():
    return LPIPS()


@pytest.fixture(scope="module")
def batch():
    torch.manual_seed(0)
    config = TexTokConfig.from_preset("textok-mini-32", width=32, depth=1, heads=2, num_tokens=4, text_in="none")
    model = TexTok(config)
    images = torch.rand(8, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        out = model(images)
    return images, out


def test_fraction_one_is_exactly_the_full_batch_loss(lpips, batch):
    images, out = batch
    loss = TexTokLoss(LossConfig(adversarial_weight=0.0, perceptual_fraction=1.0), image_size=32, lpips=lpips)
    total, stats = loss.generator_loss(images, out, step=0)
    # the loss as written before perceptual_fraction existed
    rec = out.reconstruction
    l2 = F.mse_loss(rec.float(), images.float())
    perceptual = lpips(rec, images).mean()
    old = 1.0 * l2 + 0.1 * perceptual
    old = old + 1e-6 * out.posterior.kl().float().mean()
    assert stats["g/lpips"] == perceptual.item()
    assert torch.equal(total, old)


@pytest.mark.parametrize("fraction", [0.25, 0.3, 0.5, 0.01])
def test_fraction_below_one_is_lpips_of_the_first_k_images(lpips, batch, fraction):
    images, out = batch
    B = images.shape[0]
    k = max(1, math.ceil(fraction * B))
    loss = TexTokLoss(LossConfig(adversarial_weight=0.0, perceptual_fraction=fraction), image_size=32, lpips=lpips)
    _, stats = loss.generator_loss(images, out, step=0)
    assert stats["g/lpips"] == lpips(out.reconstruction[:k], images[:k]).mean().item()
    assert k < B


def test_only_the_first_k_images_get_perceptual_gradients(lpips, batch):
    images, out = batch
    rec = out.reconstruction.clone().requires_grad_(True)
    loss = TexTokLoss(LossConfig(adversarial_weight=0.0, l2_weight=0.0, kl_weight=0.0, perceptual_fraction=0.25),
                      image_size=32, lpips=lpips)
    total, _ = loss.generator_loss(images, out._replace(reconstruction=rec), step=0)
    total.backward()
    per_image = rec.grad.flatten(1).abs().sum(1)
    assert (per_image[:2] > 0).all() and (per_image[2:] == 0).all()
