"""GAN losses and regularisers against their formulas / hand computations."""

import math

import pytest
import torch
import torch.nn as nn

from textok.losses import LeCAM, adversarial_d_loss, adversarial_g_loss, r1_penalty

REAL = torch.tensor([2.0, 0.5, -1.0])
FAKE = torch.tensor([-2.0, 0.0, 1.5])


def test_hinge_losses():
    # D: mean(relu(1 - real)) + mean(relu(1 + fake)) = (0 + 0.5 + 2)/3 + (0 + 1 + 2.5)/3
    assert adversarial_d_loss(REAL, FAKE, "hinge").item() == pytest.approx(2.5 / 3 + 3.5 / 3)
    assert adversarial_g_loss(FAKE, "hinge").item() == pytest.approx(-(-2.0 + 0.0 + 1.5) / 3)


def test_non_saturating_losses():
    def sp(v):
        return math.log1p(math.exp(v))

    d = sum(sp(-r) for r in REAL.tolist()) / 3 + sum(sp(f) for f in FAKE.tolist()) / 3
    g = sum(-math.log(1 / (1 + math.exp(-f))) for f in FAKE.tolist()) / 3
    assert adversarial_d_loss(REAL, FAKE, "non-saturating").item() == pytest.approx(d, rel=1e-6)
    assert adversarial_g_loss(FAKE, "non-saturating").item() == pytest.approx(g, rel=1e-6)


def test_unknown_adversarial_loss_is_refused():
    with pytest.raises(ValueError, match="hinge"):
        adversarial_g_loss(FAKE, "wasserstein")


def test_lecam_against_hand_computation():
    lecam = LeCAM(decay=0.9)
    # step 1: anchors 0 -> 0.1 * mean: real mean 0.5 -> 0.05; fake mean -1/6 -> -1/60
    value = lecam(REAL, FAKE).item()
    a_r, a_f = 0.1 * 0.5, 0.1 * (-0.5 / 3)
    assert lecam.ema_real.item() == pytest.approx(a_r) and lecam.ema_fake.item() == pytest.approx(a_f)
    hand = (sum(max(r - a_f, 0) ** 2 for r in REAL.tolist()) / 3
            + sum(max(a_r - f, 0) ** 2 for f in FAKE.tolist()) / 3)
    assert value == pytest.approx(hand, rel=1e-6)
    # step 2: the anchors keep averaging
    lecam(REAL + 1, FAKE - 1)
    assert lecam.ema_real.item() == pytest.approx(0.9 * a_r + 0.1 * 1.5)
    assert lecam.ema_fake.item() == pytest.approx(0.9 * a_f + 0.1 * (-0.5 / 3 - 1))
    # anchors are saved in the state dict; eval mode does not move them
    state = lecam.state_dict()
    assert set(state) == {"ema_real", "ema_fake"}
    lecam.eval()
    lecam(REAL * 100, FAKE * 100)
    assert torch.equal(lecam.state_dict()["ema_real"], state["ema_real"])


def test_r1_equals_squared_gradient_norm():
    torch.manual_seed(0)
    # linear D(x) = <w, x>: the gradient is w for every sample, so R1 = ||w||^2
    w = torch.randn(3, 4, 4)
    x = torch.randn(5, 3, 4, 4, requires_grad=True)
    logits = (x * w).flatten(1).sum(1)
    assert r1_penalty(logits, x).item() == pytest.approx(w.square().sum().item(), rel=1e-5)
    # a non-linear D: equals the per-sample squared gradient norm from autograd, averaged
    net = nn.Sequential(nn.Flatten(), nn.Linear(48, 8), nn.Tanh(), nn.Linear(8, 1))
    x = torch.randn(4, 3, 4, 4, requires_grad=True)
    logits = net(x).squeeze(1)
    expected = torch.stack([torch.autograd.grad(net(x[i:i + 1]).sum(), x)[0][i].square().sum() for i in range(4)]).mean()
    r1 = r1_penalty(logits, x)
    assert r1.item() == pytest.approx(expected.item(), rel=1e-5)
    r1.backward()  # differentiable w.r.t. D's weights
    assert net[1].weight.grad.abs().sum() > 0


def test_r1_needs_input_gradients():
    with pytest.raises(ValueError, match="requires_grad"):
        r1_penalty(torch.zeros(2), torch.zeros(2, 3, 4, 4))
