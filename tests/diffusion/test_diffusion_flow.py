import pytest
import torch

from textok.diffusion import DiffusionConfig, FlowMatching, build_diffusion

MU, S = -0.3, 0.6


def oracle_velocity(x, t):
    """E[eps - x0 | x_t] for Gaussian data on the path x_t = (1 - t) x0 + t eps (t given x1000)."""
    t = (t / 1000.0).view(-1, 1, 1)
    var = (1 - t) ** 2 * S**2 + t**2
    r = (x - (1 - t) * MU) / var
    x0 = MU + (1 - t) * S**2 * r
    eps = t * r
    return eps - x0


@pytest.mark.parametrize("sampler,steps", [("euler", 100), ("heun", 20)])
def test_flow_samplers_recover_the_data_distribution(sampler, steps):
    f = FlowMatching()
    x = f.sample(oracle_velocity, (64, 32, 4), steps=steps, sampler=sampler, generator=torch.Generator().manual_seed(0))
    assert abs(x.mean().item() - MU) < 0.03
    assert abs(x.std().item() - S) < 0.03


def test_heun_is_more_accurate_than_euler_at_few_steps():
    f = FlowMatching()
    noise = torch.randn(64, 32, 4, generator=torch.Generator().manual_seed(0))
    ref = f.sample(oracle_velocity, noise.shape, steps=400, sampler="heun", noise=noise.clone())
    err = {s: (f.sample(oracle_velocity, noise.shape, steps=5, sampler=s, noise=noise.clone()) - ref).abs().mean().item()
           for s in ("euler", "heun")}
    assert err["heun"] < err["euler"] / 3


def test_flow_loss_is_zero_for_the_true_velocity():
    f = FlowMatching()
    x0, noise = torch.randn(4, 8, 4), torch.randn(4, 8, 4)
    terms = f.training_losses(lambda x, t: noise - x0, x0, noise=noise)
    assert terms["loss"].shape == (4,) and terms["loss"].abs().max() < 1e-10
    wrong = f.training_losses(lambda x, t: torch.zeros_like(x), x0, noise=noise)
    assert wrong["loss"].min() > 0.1


def test_flow_is_deterministic_and_checks_channels():
    f = build_diffusion(DiffusionConfig(objective="flow", learned_variance=False))
    assert isinstance(f, FlowMatching)
    a = f.sample(oracle_velocity, (2, 4, 4), steps=5, generator=torch.Generator().manual_seed(3))
    b = f.sample(oracle_velocity, (2, 4, 4), steps=5, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="learn_sigma=False"):
        f.sample(lambda x, t: torch.cat([x, x], -1), (1, 4, 4), steps=2)
    with pytest.raises(ValueError, match="sampler must be one of"):
        f.sample(oracle_velocity, (1, 4, 4), sampler="ddpm")
