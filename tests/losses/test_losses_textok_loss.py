"""TexTokLoss: generator / discriminator objectives with a tiny TexTok at 32 px."""

import dataclasses

import pytest
import torch

from textok import TexTok, TexTokConfig
from textok.losses import LPIPS, LossConfig, TexTokLoss

SMALL = dict(discriminator_channel_base=256, discriminator_channel_max=32)


@pytest.fixture(scope="module")
def lpips():
    return LPIPS()


def tiny_model(latent="kl"):
    config = TexTokConfig.from_preset("textok-mini-32", width=32, depth=1, heads=2, num_tokens=4, text_in="none", latent=latent)
    return TexTok(config)


def batch(model, B=2):
    images = torch.rand(B, 3, 32, 32) * 2 - 1
    return images, model(images)


def test_generator_and_discriminator_losses_run_and_are_finite(lpips):
    loss = TexTokLoss(LossConfig(discriminator_start=10, r1_every=4, **SMALL), image_size=32, lpips=lpips)
    model = tiny_model()
    images, out = batch(model)
    g, gs = loss.generator_loss(images, out, step=12)
    assert torch.isfinite(g) and {"g/l2", "g/lpips", "g/kl", "g/adv", "g/total"} <= set(gs)
    assert gs["g/total"] == pytest.approx(g.item())
    g.backward()
    assert all(p.grad is None for p in loss.discriminator.parameters())  # G step leaves D alone
    assert any(p.grad is not None for p in model.parameters())
    d, ds = loss.discriminator_loss(images, out.reconstruction, step=12)  # 12 % 4 == 0: R1 step
    assert torch.isfinite(d) and ds["d/active"] == 1.0 and "d/r1" in ds and "d/lecam" in ds
    d.backward()
    assert all(p.grad is not None for p in loss.discriminator.parameters())
    _, ds = loss.discriminator_loss(images, out.reconstruction, step=13)
    assert "d/r1" not in ds


def test_discriminator_terms_are_zero_before_start(lpips):
    loss = TexTokLoss(LossConfig(discriminator_start=100, **SMALL), image_size=32, lpips=lpips)
    model = tiny_model()
    images, out = batch(model)
    g, gs = loss.generator_loss(images, out, step=99)
    assert "g/adv" not in gs
    expected = gs["g/l2"] + 0.1 * gs["g/lpips"] + 1e-6 * gs["g/kl"]
    assert g.item() == pytest.approx(expected, rel=1e-6)
    d, ds = loss.discriminator_loss(images, out.reconstruction, step=99)
    assert d.item() == 0.0 and ds == {"d/active": 0.0}
    d.backward()  # still has a graph
    assert all(p.grad is not None and p.grad.abs().sum() == 0 for p in loss.discriminator.parameters())
    ema = loss.lecam.ema_real.clone()
    assert torch.equal(loss.lecam.ema_real, ema)


def test_kl_only_for_the_kl_latent():
    config = LossConfig(adversarial_weight=0.0, perceptual_weight=0.0, kl_weight=0.5)
    loss = TexTokLoss(config, image_size=32)
    model = tiny_model("deterministic")
    images, out = batch(model)
    g, gs = loss.generator_loss(images, out, step=0)
    assert "g/kl" not in gs and g.item() == pytest.approx(gs["g/l2"])
    model = tiny_model("kl")
    images, out = batch(model)
    g, gs = loss.generator_loss(images, out, step=0)
    assert gs["g/kl"] > 0 and g.item() == pytest.approx(gs["g/l2"] + 0.5 * gs["g/kl"], rel=1e-6)


def test_no_discriminator_or_lpips_when_their_weights_are_zero():
    loss = TexTokLoss(LossConfig(adversarial_weight=0.0, perceptual_weight=0.0), image_size=32)
    assert loss.discriminator is None and loss.lecam is None and loss.lpips is None
    assert list(loss.state_dict()) == []
    images = torch.zeros(2, 3, 32, 32)
    d, ds = loss.discriminator_loss(images, images, step=10**6)
    assert d.item() == 0.0 and ds["d/active"] == 0.0
    d.backward()


def test_state_dict_holds_discriminator_and_lecam_anchors(lpips):
    loss = TexTokLoss(LossConfig(discriminator_start=0, **SMALL), image_size=32, lpips=lpips)
    keys = set(loss.state_dict())
    assert {"lecam.ema_real", "lecam.ema_fake"} <= keys
    assert all(k.startswith(("discriminator.", "lecam.")) for k in keys)  # LPIPS is not saved
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    loss.discriminator_loss(images, images.flip(0), step=1)
    other = TexTokLoss(LossConfig(discriminator_start=0, **SMALL), image_size=32, lpips=lpips)
    other.load_state_dict(loss.state_dict())
    assert other.lecam.ema_real.item() == loss.lecam.ema_real.item() != 0.0


def test_lazy_r1_is_scaled_by_its_interval(lpips):
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    fake = torch.rand(2, 3, 32, 32) * 2 - 1
    totals = {}
    for every in (1, 4):
        torch.manual_seed(0)
        config = LossConfig(discriminator_start=0, r1_every=every, lecam_weight=0.0, perceptual_weight=0.0, **SMALL)
        loss = TexTokLoss(config, image_size=32)
        d, ds = loss.discriminator_loss(images, fake, step=8)
        totals[every] = (d.item(), ds)
    (d1, s1), (d4, s4) = totals[1], totals[4]
    assert s1["d/r1"] == pytest.approx(s4["d/r1"])  # same D (same seed), same penalty
    assert d1 == pytest.approx(s1["d/adv"] + 10.0 / 2 * s1["d/r1"], rel=1e-5)
    assert d4 == pytest.approx(s4["d/adv"] + 4 * 10.0 / 2 * s4["d/r1"], rel=1e-5)


@pytest.mark.parametrize("kind", ["hinge", "non-saturating"])
def test_adaptive_weight_uses_last_layer(lpips, kind):
    config = LossConfig(discriminator_start=0, adaptive_weight=True, adversarial_loss=kind, **SMALL)
    loss = TexTokLoss(config, image_size=32, lpips=lpips)
    model = tiny_model()
    images, out = batch(model)
    last = model.to_pixels.weight  # the detokenizer's last layer
    g, gs = loss.generator_loss(images, out, step=0, last_layer=last)
    assert torch.isfinite(g) and gs["g/adv_weight"] > 0 and gs["g/adv_weight"] != pytest.approx(0.1)
    with pytest.raises(ValueError, match="last_layer"):
        loss.generator_loss(images, model(images), step=0)


def test_config_validation_names_the_field():
    with pytest.raises(ValueError, match="LossConfig.r1_every"):
        LossConfig(r1_every=0)
    with pytest.raises(ValueError, match="LossConfig.adversarial_loss"):
        LossConfig(adversarial_loss="wgan")
    assert dataclasses.asdict(LossConfig())["r1_weight"] == 10.0


def test_l1_term_adds_the_mean_absolute_error_and_is_off_by_default():
    model = tiny_model(latent="deterministic")
    images, out = batch(model)
    _, off = TexTokLoss(LossConfig(perceptual_weight=0.0, adversarial_weight=0.0), image_size=32).generator_loss(
        images, out, step=0)
    assert "g/l1" not in off
    loss = TexTokLoss(LossConfig(l2_weight=0.5, l1_weight=2.0, perceptual_weight=0.0, adversarial_weight=0.0),
                      image_size=32)
    g, gs = loss.generator_loss(images, out, step=0)
    l1 = (out.reconstruction - images).abs().mean().item()
    assert gs["g/l1"] == pytest.approx(l1, rel=1e-5)
    assert g.item() == pytest.approx(0.5 * gs["g/l2"] + 2.0 * l1, rel=1e-5)
    with pytest.raises(ValueError, match="l1_weight"):
        LossConfig(l1_weight=-1.0)
