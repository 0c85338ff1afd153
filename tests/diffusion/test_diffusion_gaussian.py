import numpy as np
import pytest
import torch

from textok.diffusion import DiffusionConfig, GaussianDiffusion, build_diffusion, space_timesteps

MU, S = 0.5, 0.7  # the data: every coordinate ~ N(MU, S^2)


def oracle_eps(diffusion: GaussianDiffusion, learned: bool):
    """The exact E[eps | x_t] for Gaussian data (original timesteps 0..999), plus v = 0."""
    ac = torch.from_numpy(GaussianDiffusion().alphas_cumprod)  # the model sees original timesteps

    def model(x, t):
        ab = ac[t].float().view(-1, 1, 1)
        eps = (1 - ab).sqrt() * (x - ab.sqrt() * MU) / (ab * S**2 + 1 - ab)
        return torch.cat([eps, torch.zeros_like(eps)], -1) if learned else eps

    return model


def test_linear_schedule_is_the_dit_one():
    d = GaussianDiffusion()
    assert d.num_timesteps == 1000
    assert d.betas[0] == pytest.approx(1e-4) and d.betas[-1] == pytest.approx(0.02)
    assert d.alphas_cumprod[-1] == pytest.approx(4.04e-5, rel=0.01)  # nearly pure noise at t = 999
    assert np.all(np.diff(d.betas) > 0)


@pytest.mark.parametrize("steps,sampler", [(250, "ddpm"), (25, "ddpm"), (50, "ddim"), (1, "ddpm")])
def test_respacing_keeps_the_marginals(steps, sampler):
    d = GaussianDiffusion()
    r = d.respace(steps, sampler)
    keep = space_timesteps(1000, steps, sampler)
    assert r.num_timesteps == len(keep) == steps
    assert list(r.timestep_map) == keep
    np.testing.assert_allclose(r.alphas_cumprod, d.alphas_cumprod[keep], rtol=1e-10)
    if sampler == "ddpm" and steps > 1:
        assert keep[0] == 0 and keep[-1] == 999


def test_ddim_grid_starts_at_the_last_timestep():
    # trailing spacing: a 1-step sampler must start from t = T-1 (pure noise), not from t = 0
    assert space_timesteps(1000, 1, "ddim") == [999]
    assert space_timesteps(1000, 2, "ddim") == [499, 999]
    assert space_timesteps(1000, 4, "ddim") == [249, 499, 749, 999]
    assert space_timesteps(1000, 1000, "ddim") == list(range(1000))
    for steps in (3, 7, 50, 64, 250):
        keep = space_timesteps(1000, steps, "ddim")
        assert len(keep) == steps and keep[-1] == 999 and keep == sorted(set(keep))


def test_one_step_ddim_with_the_exact_denoiser_lands_on_the_data_mean():
    d = GaussianDiffusion(learned_variance=True)
    x = d.sample(oracle_eps(d, True), (64, 32, 4), steps=1, sampler="ddim", generator=torch.Generator().manual_seed(0))
    assert abs(x.mean().item() - MU) < 0.03 and x.std().item() < S  # E[x_0 | pure noise] is near the mean


@pytest.mark.parametrize("sampler,steps,learned", [("ddpm", 100, True), ("ddpm", 250, False), ("ddim", 50, True)])
def test_samplers_recover_the_data_distribution_with_the_exact_denoiser(sampler, steps, learned):
    d = GaussianDiffusion(learned_variance=learned)
    g = torch.Generator().manual_seed(0)
    x = d.sample(oracle_eps(d, learned), (64, 32, 4), steps=steps, sampler=sampler, generator=g)
    assert abs(x.mean().item() - MU) < 0.03
    # deterministic DDIM is a first-order ODE solver: at 50 steps it shrinks the spread by ~4%
    # (std 0.67 for 0.70 over seeds 0-2, 0.695 at 250 steps), with ADM's grid as with ours
    assert abs(x.std().item() - S) < (0.04 if sampler == "ddim" else 0.03)


def test_sampling_is_deterministic_under_a_seed():
    d = GaussianDiffusion()
    model = oracle_eps(d, True)
    run = lambda seed, sampler: d.sample(model, (2, 8, 4), steps=20, sampler=sampler,
                                         generator=torch.Generator().manual_seed(seed))
    for sampler in ("ddpm", "ddim"):
        assert torch.equal(run(1, sampler), run(1, sampler))
        assert not torch.equal(run(1, sampler), run(2, sampler))


def test_hybrid_loss_trains_the_mean_with_mse_and_the_variance_with_the_bound():
    d = GaussianDiffusion()
    x0 = torch.randn(8, 6, 4)
    out = torch.nn.Parameter(torch.randn(8, 6, 8) * 0.1)
    t = torch.tensor([0, 1, 10, 100, 500, 900, 999, 0])
    terms = d.training_losses(lambda x, tt: out, x0, t=t, generator=torch.Generator().manual_seed(0))
    assert set(terms) == {"loss", "mse", "vb"}
    assert all(v.shape == (8,) and torch.isfinite(v).all() for v in terms.values())
    torch.testing.assert_close(terms["loss"], terms["mse"] + terms["vb"])
    terms["vb"].sum().backward(retain_graph=True)
    assert out.grad[..., :4].abs().max() == 0  # the bound does not move the noise prediction
    assert out.grad[..., 4:].abs().max() > 0
    out.grad = None
    terms["mse"].sum().backward()
    assert out.grad[..., 4:].abs().max() == 0 and out.grad[..., :4].abs().max() > 0


def test_the_bound_is_smallest_at_the_true_posterior_variance():
    # v = -1 is the posterior's beta-tilde: with the exact mean, the KL term is zero there
    d = GaussianDiffusion()
    x0 = torch.randn(4, 6, 4)
    noise = torch.randn_like(x0)
    t = torch.full((4,), 300)
    def model(v):
        return lambda x, tt: torch.cat([noise, torch.full_like(noise, v)], -1)
    vb = {v: d.training_losses(model(v), x0, t=t, noise=noise)["vb"].mean().item() for v in (-1.0, 0.0, 1.0)}
    assert vb[-1.0] < 1e-6 < vb[0.0] < vb[1.0]


def test_config_validation():
    with pytest.raises(ValueError, match="objective"):
        DiffusionConfig(objective="edm")
    with pytest.raises(ValueError, match="learned_variance"):
        DiffusionConfig(objective="flow")
    with pytest.raises(ValueError, match="sampler"):
        DiffusionConfig(sampler="euler")
    assert DiffusionConfig().default_steps("ddpm") == 250
    assert isinstance(build_diffusion(DiffusionConfig()), GaussianDiffusion)
    with pytest.raises(ValueError, match="steps must lie"):
        GaussianDiffusion().respace(1001)
    with pytest.raises(ValueError, match="sampler must be one of"):
        GaussianDiffusion().sample(lambda x, t: x, (1, 2, 2), sampler="euler")
