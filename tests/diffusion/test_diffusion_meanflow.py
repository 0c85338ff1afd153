import dataclasses

import pytest
import torch

import textok.diffusion.meanflow as meanflow_module
from textok import DiT, DiTConfig, TextEmbedding
from textok.diffusion import (SAMPLERS, Condition, DiffusionConfig, FlowMatching, GaussianDiffusion, MeanFlow,
                              MeanFlowConfig, build_diffusion, conditional_model, guided_model)

MU, S = -0.3, 0.6  # Gaussian data x_0 ~ N(MU, S^2) per channel: the exact mean flow is known


def tiny(condition="class", **kw) -> DiTConfig:
    return DiTConfig.from_preset("dit-tiny", num_tokens=6, token_dim=4, num_classes=3, text_dim=8, condition=condition,
                                 learn_sigma=False, time_inputs=2, **kw)


def perturbed(condition="class", std=0.05, seed=0, **kw) -> DiT:
    """A tiny MeanFlow DiT with every zero-initialised layer moved off zero."""
    torch.manual_seed(seed)
    model = DiT(tiny(condition, **kw))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * std)
    return model.eval()


def captions(B=2):
    mask = torch.tensor([[True, True, False], [True, True, True]])[:B]
    return TextEmbedding(torch.randn(B, 3, 8) * mask[..., None], mask)


# ---- the exact mean flow of Gaussian data (t = 1 is noise, as in flow.py) --------------------
def sigma(t):
    return torch.sqrt((1 - t) ** 2 * S**2 + t**2)


def oracle_u(z, t, r):
    """u(z_t, r, t) = (z_t - z_r) / (t - r): the 1D flow of Gaussian data keeps the standardised
    value, z_r = (1 - r) MU + sigma_r / sigma_t (z_t - (1 - t) MU); r = t is the velocity."""
    t, r = t.view(-1, 1, 1), r.view(-1, 1, 1)
    std = (z - (1 - t) * MU) / sigma(t)
    velocity = -MU + std * (t - (1 - t) * S**2) / sigma(t)  # d/dt of (1 - t) MU + sigma_t std
    gap = (t - r).clamp(min=1e-12)
    jump = (z - (1 - r) * MU - sigma(r) * std) / gap
    return torch.where(t - r > 1e-6, jump, velocity)


def test_oracle_is_a_fixed_point_of_the_meanflow_target():
    """With the exact u and the exact (marginal) velocity, the target is u itself: the identity
    u = v - (t - r)(v . grad_z u + du/dt) holds with our signs, argument order and JVP."""
    g = torch.Generator().manual_seed(0)
    z = torch.randn(16, 5, 3, generator=g, dtype=torch.float64)
    t = torch.rand(16, generator=g, dtype=torch.float64) * 0.9 + 0.1
    r = t * torch.rand(16, generator=g, dtype=torch.float64)
    mf = MeanFlow()
    v = oracle_u(z, t, t)
    target = mf.target(oracle_u, z, t, r, v)
    torch.testing.assert_close(target, oracle_u(z, t, r), atol=1e-8, rtol=1e-8)


@pytest.mark.parametrize("steps", [1, 2, 4])
def test_sampler_with_the_exact_mean_flow_draws_the_data_distribution(steps):
    x = MeanFlow().sample(oracle_u, (256, 16, 4), steps=steps, generator=torch.Generator().manual_seed(0))
    assert abs(x.mean().item() - MU) < 0.02 and abs(x.std().item() - S) < 0.02


# ---- (a) the sampler on a tiny DiT --------------------------------------------------------
@pytest.mark.parametrize("steps", [1, 2, 4])
@pytest.mark.parametrize("cfg", [1.0, 2.0])
def test_sampler_runs_a_tiny_dit_in_1_2_4_steps(steps, cfg):
    model, cond = perturbed(), Condition(labels=torch.tensor([0, 2, 1]))
    calls = []

    def counted(x, t, r=None):
        calls.append(1)
        return guided_model(model, cond, cfg)(x, t, r)

    x = MeanFlow().sample(counted, (3, 6, 4), steps=steps, generator=torch.Generator().manual_seed(1))
    assert x.shape == (3, 6, 4) and torch.isfinite(x).all()
    assert len(calls) == steps  # one network call per step, guided or not (guidance batches both halves)
    again = MeanFlow().sample(counted, (3, 6, 4), steps=steps, generator=torch.Generator().manual_seed(1))
    assert torch.equal(x, again)


def test_sampler_checks_its_arguments():
    mf = MeanFlow()
    with pytest.raises(ValueError, match="sampler must be one of"):
        mf.sample(oracle_u, (1, 2, 4), sampler="euler")
    with pytest.raises(ValueError, match="learn_sigma=False"):
        mf.sample(lambda x, t, r: torch.cat([x, x], -1), (1, 2, 4))


# ---- (b) the JVP target against finite differences -----------------------------------------
@pytest.mark.parametrize("condition", ["class", "text"])
@pytest.mark.parametrize("time_scale", [1.0, 1000.0])
def test_jvp_target_matches_finite_differences(condition, time_scale):
    model = perturbed(condition).double()
    cond = Condition(labels=torch.tensor([0, 2])) if condition == "class" else Condition(text=captions())
    fn = conditional_model(model, cond)
    mf = MeanFlow(MeanFlowConfig(time_scale=time_scale))
    g = torch.Generator().manual_seed(2)
    z = torch.randn(2, 6, 4, generator=g, dtype=torch.float64)
    v = torch.randn(2, 6, 4, generator=g, dtype=torch.float64)
    t = torch.tensor([0.7, 0.4], dtype=torch.float64)
    r = torch.tensor([0.2, 0.0], dtype=torch.float64)
    target = mf.target(fn, z, t, r, v)
    dudt = (v - target) / (t - r).view(-1, 1, 1)

    h = 1e-6  # central difference of u along the path: d/dt u(z + s v, r, t + s) at s = 0
    with torch.no_grad():
        u = lambda s: mf._average_velocity(fn, z + s * v, t + s, r)
        fd = (u(h) - u(-h)) / (2 * h)
    assert fd.abs().max() > 1e-2  # a derivative worth comparing
    assert (dudt - fd).norm() / fd.norm() < 1e-3


def test_jvp_target_runs_through_fused_attention_in_float32():
    """In float32 the CPU's SDPA picks a fused kernel without forward-mode AD; the target takes
    the math path and agrees with the float64 computation."""
    model, labels = perturbed(), torch.tensor([0, 1])
    g = torch.Generator().manual_seed(3)
    z, v = torch.randn(2, 6, 4, generator=g), torch.randn(2, 6, 4, generator=g)
    t, r = torch.tensor([0.9, 0.5]), torch.tensor([0.1, 0.3])
    mf = MeanFlow()
    out = mf.target(lambda x, tt, rr: model(x, tt, labels=labels, r=rr), z, t, r, v)
    model64 = model.double()
    ref = mf.target(lambda x, tt, rr: model64(x, tt, labels=labels, r=rr), z.double(), t.double(), r.double(), v)
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)


# ---- (d) r = t is flow matching ------------------------------------------------------------
def test_r_equal_t_reduces_to_the_flow_matching_loss(monkeypatch):
    model, labels = perturbed(), torch.tensor([0, 1, 2, 0])
    g = torch.Generator().manual_seed(4)
    x0, noise, t = torch.randn(4, 6, 4, generator=g), torch.randn(4, 6, 4, generator=g), torch.rand(4, generator=g)

    def no_jvp(*args, **kwargs):
        raise AssertionError("r = t needs no JVP")

    monkeypatch.setattr(meanflow_module, "jvp", no_jvp)
    mf = MeanFlow(MeanFlowConfig(adaptive_p=0.0))
    with torch.no_grad():
        ours = mf.training_losses(lambda x, tt, rr: model(x, tt, labels=labels, r=rr), x0, t=t, r=t, noise=noise)
        # flow matching on the same network, called with r = t
        ref = FlowMatching(time_scale=1.0).training_losses(lambda x, tt: model(x, tt, labels=labels, r=tt), x0, t=t,
                                                           noise=noise)
    torch.testing.assert_close(ours["loss"], ref["loss"])
    torch.testing.assert_close(ours["mse"], ref["mse"])


def test_adaptive_weight_and_trained_guidance():
    x0, noise = torch.zeros(3, 2, 4), torch.ones(3, 2, 4)  # v = 1 everywhere
    t = torch.full((3,), 0.5)
    zero = lambda x, tt, rr: torch.zeros_like(x)
    half = lambda x, tt, rr: torch.full_like(x, 0.5)  # the unconditional velocity
    weighted = MeanFlow(MeanFlowConfig(adaptive_p=1.0, adaptive_c=1e-3)).training_losses(zero, x0, t=t, noise=noise)
    torch.testing.assert_close(weighted["mse"], torch.ones(3))
    torch.testing.assert_close(weighted["loss"], torch.full((3,), 1 / 1.001))  # sg(1 / (mse + c)) * mse
    # guidance trained in: the target is w v + (1 - w) u_null for the guided samples, v for the others
    mf = MeanFlow(MeanFlowConfig(adaptive_p=0.0, cfg_scale=3.0))
    terms = mf.training_losses(zero, x0, t=t, noise=noise, uncond_model=half, guide=torch.tensor([True, False, True]))
    w = 3.0
    torch.testing.assert_close(terms["mse"], torch.tensor([(w + (1 - w) * 0.5) ** 2, 1.0, (w + (1 - w) * 0.5) ** 2]))
    with pytest.raises(ValueError, match="uncond_model"):
        mf.training_losses(zero, x0, t=t, noise=noise)
    with pytest.raises(ValueError, match="r <= t"):
        mf.training_losses(zero, x0, t=t, r=t + 0.1, noise=noise)


def test_time_sampling_orders_r_and_t_and_mixes_in_flow_matching():
    mf = MeanFlow(MeanFlowConfig(interval_fraction=0.25))
    t, r = mf.sample_times(20000, "cpu", torch.Generator().manual_seed(0))
    assert (r <= t).all() and (t > 0).all() and (t < 1).all()
    assert abs((r < t).float().mean().item() - 0.25) < 0.02
    # logit-normal(-0.4, 1): the median of a single draw is sigmoid(-0.4); t is the larger of two
    assert torch.sigmoid(torch.tensor(-0.4)) < t.median() < 0.7


# ---- (c) the loss falls on a toy mixture ---------------------------------------------------
def test_training_on_a_two_mode_mixture_learns_few_step_samples():
    """Tokens [4, 8] from two modes (all +1 or all -1, std 0.1): 120 Adam steps of MeanFlow on
    a dit-tiny lower the fixed-batch flow-matching error (r = t, training's t distribution)
    and bring 1- and 2-step samples towards the modes."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    N, d = 4, 8
    model = DiT(DiTConfig.from_preset("dit-tiny", num_tokens=N, token_dim=d, condition="none", learn_sigma=False,
                                      time_inputs=2))
    mf = build_diffusion(DiffusionConfig(objective="meanflow", learned_variance=False))
    g = torch.Generator().manual_seed(1)

    def data(B):
        sign = torch.where(torch.rand(B, generator=g) < 0.5, -1.0, 1.0)
        return sign.view(-1, 1, 1) * torch.ones(B, N, d) + 0.1 * torch.randn(B, N, d, generator=g)

    fn = lambda x, t, r: model(x, t, r=r)
    x_eval, noise_eval = data(256), torch.randn(256, N, d, generator=g)
    t_eval, _ = mf.sample_times(256, "cpu", g)

    def flow_error():
        with torch.no_grad():
            return mf.training_losses(fn, x_eval, t=t_eval, noise=noise_eval)["mse"].mean().item()

    def sample_error(steps):
        model.eval()
        z = mf.sample(fn, (256, N, d), steps=steps, generator=torch.Generator().manual_seed(5))
        model.train()
        return (z - torch.sign(z.mean((1, 2), keepdim=True))).pow(2).mean().item()

    before = flow_error(), sample_error(1), sample_error(2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(120):
        loss = mf.training_losses(fn, data(32), generator=g)["loss"].mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = flow_error(), sample_error(1), sample_error(2)
    print(f"flow-matching mse, 1-step and 2-step sample error: before {before}, after {after}")
    assert after[0] < before[0] / 4
    assert after[1] < before[1] / 2 and after[2] < before[2] / 5


# ---- configs and the DiT's second time input -------------------------------------------------
def test_sampler_table_agrees_with_the_objectives():
    for cls, objective in ((GaussianDiffusion, "gaussian"), (FlowMatching, "flow"), (MeanFlow, "meanflow")):
        assert cls.samplers == tuple(n for n, s in SAMPLERS.items() if s.objective == objective)
    cfg = DiffusionConfig(objective="meanflow", learned_variance=False)
    assert (cfg.default_sampler, cfg.default_steps("meanflow"), cfg.cfg_scale) == ("meanflow", 1, 1.0)
    assert DiffusionConfig().cfg_scale == 1.5 and DiffusionConfig().default_steps("ddim") == 50
    assert isinstance(build_diffusion(cfg), MeanFlow)
    with pytest.raises(ValueError, match="no variance to learn"):
        DiffusionConfig(objective="meanflow")
    with pytest.raises(ValueError, match="must be one of"):
        DiffusionConfig(objective="meanflow", learned_variance=False, sampler="euler")
    with pytest.raises(ValueError, match="MeanFlowConfig.interval_fraction"):
        MeanFlowConfig(interval_fraction=1.5)


def test_dit_second_time_input_is_optional_and_checked():
    default = DiT(dataclasses.replace(tiny(), time_inputs=1))
    assert not any(k.startswith("interval_embed") for k in default.state_dict())  # old checkpoints load unchanged
    x, t, y = torch.randn(2, 6, 4), torch.tensor([0.5, 0.9]), torch.tensor([0, 1])
    with pytest.raises(ValueError, match="time_inputs=1"):
        default(x, t, labels=y, r=t)
    model = perturbed()
    with pytest.raises(ValueError, match="r is missing"):
        model(x, t, labels=y)
    assert not torch.allclose(model(x, t, labels=y, r=t), model(x, t, labels=y, r=t * 0))
    with pytest.raises(ValueError, match="DiTConfig.time_inputs"):
        dataclasses.replace(tiny(), time_inputs=3)


def test_flops_formula_counts_the_second_time_embedder():
    from torch.utils.flop_counter import FlopCounterMode

    cfg = DiTConfig.from_preset("dit-s", num_tokens=32, token_dim=8, learn_sigma=False, time_inputs=2)
    with torch.device("meta"):
        model = DiT(cfg)
        one_time = DiT(dataclasses.replace(cfg, time_inputs=1))
        with FlopCounterMode(display=False) as counter:
            model(torch.randn(1, 32, 8), torch.ones(1), labels=torch.zeros(1, dtype=torch.long), r=torch.zeros(1))
    assert counter.get_total_flops() == model.flops_per_forward()
    assert model.flops_per_forward() - one_time.flops_per_forward() == 2 * (256 * 384 + 384 * 384)
