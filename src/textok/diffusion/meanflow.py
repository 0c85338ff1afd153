"""MeanFlow: one- and few-step generation from average velocities (Geng et al. 2025,
"Mean Flows for One-step Generative Modeling").

The path and time convention are ``flow.py``'s: z_t = (1 - t) x_0 + t eps, t = 0 is data and
t = 1 is noise, and the instantaneous velocity is v = dz_t/dt = eps - x_0. The network
u(z_t, r, t) predicts the *average* velocity over an interval [r, t], r <= t,

    u(z_t, r, t) = 1 / (t - r) * integral_r^t v(z_s, s) ds,

so one step goes from t to r exactly: z_r = z_t - (t - r) u(z_t, r, t); one network call
z_0 = z_1 - u(z_1, 0, 1) is a sample. Differentiating (t - r) u = integral_r^t v ds in t gives
the MeanFlow identity

    u(z_t, r, t) = v(z_t, t) - (t - r) d/dt u(z_t, r, t),   d/dt u = v . grad_z u + du/dt,

and its right-hand side, with the network's own u under stop-gradient, is the regression
target. The total derivative d/dt u is one Jacobian-vector product of the network with
tangents (v, 0, 1) for its inputs (z, r, t) (``torch.func.jvp``). A share of the samples has
r = t, where the target is v itself: plain flow matching.

Classifier-free guidance is trained in (the paper's guidance section): for conditioned samples the
velocity of the identity is v~ = w v + (1 - w) u(z_t, t, t | null) (the network's own
unconditional velocity, stop-gradient), so the network learns the guided field and sampling
needs no unconditional pass.

The network sees t and r times ``MeanFlowConfig.time_scale``: 1 by default (t in [0, 1], as in
SiT), not ``flow.py``'s 1000: the target differentiates u in t, and a 1000x scale gives the
timestep embedding features like cos(1000 t) whose t-derivatives are large (in exploratory
runs on the tests' toy mixture, 1-step samples came out worse with 1000). A DiT for this
objective has ``time_inputs=2`` (it embeds t and t - r) and ``learn_sigma=False``.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import torch
from torch.func import jvp
from torch.nn.attention import SDPBackend, sdpa_kernel

from .flow import time_pairs
from .gaussian import mean_flat

#: ``model(z, t, r) -> u``: z [B, N, d], t and r [B] (times x ``time_scale``) -> u [B, N, d].
MeanModelFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclasses.dataclass
class MeanFlowConfig:
    """Training options of the MeanFlow objective (``diffusion.meanflow`` in a DiT config).
    Defaults are the choices of the paper's ablations (its Table 1)."""

    interval_fraction: float = 0.25  # share of samples with r < t; the others have r = t (flow matching)
    time_mu: float = -0.4  # t and r ~ logit-normal(time_mu, time_sigma), then ordered so that r <= t
    time_sigma: float = 1.0
    adaptive_p: float = 1.0  # loss = sg(w) * mse, w = 1 / (mse + adaptive_c)^p; 0 = plain MSE
    adaptive_c: float = 1e-3
    cfg_scale: float = 1.0  # w: guidance trained into u (1 = none); needs condition dropout
    time_scale: float = 1.0  # the network sees t * time_scale and r * time_scale

    def __post_init__(self):
        def need(ok: bool, field: str, why: str):
            if not ok:
                raise ValueError(f"MeanFlowConfig.{field}={getattr(self, field)!r}: {why}")

        need(0.0 <= self.interval_fraction <= 1.0, "interval_fraction", "must lie in [0, 1]")
        need(self.time_sigma > 0, "time_sigma", "must be positive")
        need(self.adaptive_p >= 0, "adaptive_p", "must be >= 0")
        need(self.adaptive_c > 0, "adaptive_c", "must be positive")
        need(self.cfg_scale >= 0, "cfg_scale", "must be >= 0")
        need(self.time_scale > 0, "time_scale", "must be positive")


class MeanFlow:
    samplers = ("meanflow",)

    def __init__(self, config: MeanFlowConfig | None = None, default_steps: int = 1):
        self.config = config or MeanFlowConfig()
        self.time_scale = self.config.time_scale
        self.default_steps = default_steps
        self.learned_variance = False

    def _average_velocity(self, model: MeanModelFn, z: torch.Tensor, t: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        """u(z, r, t) with t, r [B] in [0, 1]; differentiable in all three (the JVP goes through it)."""
        u = model(z, t * self.time_scale, r * self.time_scale)
        if u.shape != z.shape:
            raise ValueError(f"MeanFlow needs a model output of {z.shape[-1]} channels (learn_sigma=False), "
                             f"got shape {tuple(u.shape)}")
        return u.to(torch.promote_types(u.dtype, torch.float32))  # bf16 (autocast) -> float32; float64 stays

    def sample_times(self, batch: int, device,
                     generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(t, r), each [B]: two logit-normal draws ordered so r <= t; r = t for a share
        1 - ``interval_fraction`` of the samples."""
        c = self.config
        a, b = torch.sigmoid(c.time_mu + c.time_sigma * torch.randn(2, batch, device=device, generator=generator))
        t, r = torch.maximum(a, b), torch.minimum(a, b)
        flow = torch.rand(batch, device=device, generator=generator) >= c.interval_fraction
        return t, torch.where(flow, t, r)

    @torch.no_grad()
    def target(self, model: MeanModelFn, z_t: torch.Tensor, t: torch.Tensor, r: torch.Tensor,
               v: torch.Tensor) -> torch.Tensor:
        """The stop-gradient target u_tgt = v - (t - r) (v . grad_z u + du/dt) [B, N, d].

        One forward-mode pass gives u and its total derivative. The fused SDPA kernels have
        no forward-mode derivative (CPU flash attention raises), so the JVP runs on SDPA's
        math path; the training forward that carries the gradient keeps the fused kernels.
        The pass runs in float32 even under bf16 autocast: the derivative is scaled by t - r
        and regressed on, and bf16 rounding in it would be noise in the target.
        """
        if not bool((r < t).any()):  # every sample is a flow-matching sample: no JVP needed
            return v
        with sdpa_kernel(SDPBackend.MATH), torch.autocast(z_t.device.type, enabled=False):
            _, dudt = jvp(lambda z_, r_, t_: self._average_velocity(model, z_, t_, r_),
                          (z_t, r, t), (v.to(z_t.dtype), torch.zeros_like(r), torch.ones_like(t)))
        return v - (t - r).view(-1, 1, 1).to(v.dtype) * dudt.to(v.dtype)

    def training_losses(self, model: MeanModelFn, x_start: torch.Tensor, t: torch.Tensor | None = None,
                        r: torch.Tensor | None = None, noise: torch.Tensor | None = None,
                        generator: torch.Generator | None = None, target_model: MeanModelFn | None = None,
                        uncond_model: MeanModelFn | None = None,
                        guide: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Per-sample losses [B]: ``loss`` (adaptively weighted) and ``mse`` (u against its target).

        Args:
            model: u_theta(z, t, r), the pass that carries the gradient.
            x_start: data x_0 [B, N, d]; t, r [B] in [0, 1] (default: ``sample_times``).
            target_model: the same network for the stop-gradient passes (default ``model``);
                give the unwrapped module when ``model`` is DDP-wrapped, so these passes stay
                out of DDP's gradient bookkeeping.
            uncond_model: the network under the null condition, needed when ``cfg_scale != 1``.
            guide: bool [B], the samples whose target is guided (the ones whose condition
                was not dropped; default all).
        """
        c = self.config
        B = x_start.shape[0]
        if t is None:
            t, r = self.sample_times(B, x_start.device, generator)
        elif r is None:
            r = t
        if noise is None:
            noise = torch.randn(x_start.shape, device=x_start.device, dtype=x_start.dtype, generator=generator)
        t, r = t.float(), r.float()
        if bool((r > t).any()):
            raise ValueError("MeanFlow needs r <= t for every sample")
        z_t = (1 - t).view(-1, 1, 1).to(x_start.dtype) * x_start + t.view(-1, 1, 1).to(x_start.dtype) * noise
        v = (noise - x_start).float()
        if c.cfg_scale != 1.0:
            if uncond_model is None:
                raise ValueError("MeanFlowConfig.cfg_scale != 1 needs the unconditional model (uncond_model)")
            with torch.no_grad():
                v_null = self._average_velocity(uncond_model, z_t, t, t)  # r = t: the instantaneous velocity
            guided = c.cfg_scale * v + (1 - c.cfg_scale) * v_null
            v = guided if guide is None else torch.where(guide.view(-1, 1, 1), guided, v)
        u_tgt = self.target(target_model or model, z_t, t, r, v)
        mse = mean_flat((self._average_velocity(model, z_t, t, r) - u_tgt) ** 2)
        # adaptive weighting (the paper's sg(w) ||err||^2): the weight is a constant per sample
        weight = (mse.detach() + c.adaptive_c) ** -c.adaptive_p if c.adaptive_p else torch.ones_like(mse)
        return {"loss": weight * mse, "mse": mse}

    @torch.no_grad()
    def sample(self, model: MeanModelFn, shape: tuple[int, ...], steps: int | None = None, sampler: str = "meanflow",
               generator: torch.Generator | None = None, device: str | torch.device = "cpu",
               noise: torch.Tensor | None = None, progress: bool = False, **_) -> torch.Tensor:
        """From noise (t = 1) to data (t = 0) in ``steps`` uniform jumps z_r = z_t - (t - r) u(z_t, r, t)."""
        if sampler not in self.samplers:
            raise ValueError(f"sampler must be one of {self.samplers} for MeanFlow, got {sampler!r}")
        x = noise if noise is not None else torch.randn(shape, generator=generator, device=device)
        for t, r in time_pairs(steps or self.default_steps, progress, "meanflow"):
            tt = torch.full((x.shape[0],), t, device=x.device)
            rr = torch.full((x.shape[0],), r, device=x.device)
            x = x - (t - r) * self._average_velocity(model, x, tt, rr)
        return x
