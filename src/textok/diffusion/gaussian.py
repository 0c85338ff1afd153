"""Gaussian diffusion, the DiT / ADM recipe (Ho et al. 2020; Nichol & Dhariwal 2021).

- 1000-step linear beta schedule (1e-4 .. 0.02, scaled by 1000 / T);
- the network predicts the noise epsilon and, with ``learned_variance``, a value v in [-1, 1]
  per channel that interpolates the log-variance between the posterior's beta-tilde and beta
  (ADM's "learned range");
- the hybrid loss: MSE on epsilon + the variational bound (KL per step, the discretised
  Gaussian likelihood at t = 0) with the mean's gradient stopped, so the bound trains only the
  variance, as in ADM and DiT;
- sampling: ancestral DDPM on a respaced schedule (e.g. 250 of the 1000 steps) and DDIM.

Tensors are latent tokens x [B, N, d]; ``model(x_t, t) -> [B, N, 2d]`` (or [B, N, d] without
learned variance) where ``t`` holds the *original* timesteps 0..999 even on a respaced
schedule. All schedule arithmetic is float64 numpy, as in ADM.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

ModelFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def linear_betas(num_timesteps: int) -> np.ndarray:
    scale = 1000 / num_timesteps
    return np.linspace(scale * 1e-4, scale * 0.02, num_timesteps, dtype=np.float64)


def mean_flat(x: torch.Tensor) -> torch.Tensor:
    """Mean over every axis but the batch: [B, ...] -> [B]."""
    return x.flatten(1).mean(dim=1)


def normal_kl(mean1, logvar1, mean2, logvar2) -> torch.Tensor:
    """KL(N(mean1, e^logvar1) || N(mean2, e^logvar2)), elementwise, in nats."""
    return 0.5 * (-1.0 + logvar2 - logvar1 + torch.exp(logvar1 - logvar2) + (mean1 - mean2) ** 2 * torch.exp(-logvar2))


def _approx_standard_normal_cdf(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def discretized_gaussian_log_likelihood(x: torch.Tensor, means: torch.Tensor, log_scales: torch.Tensor) -> torch.Tensor:
    """Log-likelihood of x in [-1, 1] under a Gaussian discretised to 256 bins (ADM's t = 0 term),
    elementwise, in nats. DiT keeps it for latents too; we follow the recipe."""
    centered = x - means
    inv_stdv = torch.exp(-log_scales)
    cdf_plus = _approx_standard_normal_cdf(inv_stdv * (centered + 1.0 / 255.0))
    cdf_min = _approx_standard_normal_cdf(inv_stdv * (centered - 1.0 / 255.0))
    log_cdf_plus = torch.log(cdf_plus.clamp(min=1e-12))
    log_one_minus_cdf_min = torch.log((1.0 - cdf_min).clamp(min=1e-12))
    log_cdf_delta = torch.log((cdf_plus - cdf_min).clamp(min=1e-12))
    return torch.where(x < -0.999, log_cdf_plus, torch.where(x > 0.999, log_one_minus_cdf_min, log_cdf_delta))


def space_timesteps(num_timesteps: int, steps: int, sampler: str = "ddpm") -> list[int]:
    """Which of the ``num_timesteps`` to keep for a ``steps``-step sampler.

    DDPM keeps evenly rounded positions including both ends (ADM's respacing). DDIM keeps a
    "trailing" grid that always starts at the last timestep, T-1, T-1-T/steps, ... (Lin et al.
    2024, diffusers' ``timestep_spacing="trailing"``): ADM's stride from 0 would start a 1-step
    sampler at t = 0 and a 2-step one at t = 500, i.e. denoise pure noise as if it were nearly
    clean, which makes few-step DDIM rows meaningless.
    """
    if not 1 <= steps <= num_timesteps:
        raise ValueError(f"steps must lie in [1, {num_timesteps}], got {steps}")
    if sampler == "ddim":
        return sorted({round(num_timesteps - i * num_timesteps / steps) - 1 for i in range(steps)})
    if steps == 1:
        return [num_timesteps - 1]
    frac = (num_timesteps - 1) / (steps - 1)
    return sorted({round(i * frac) for i in range(steps)})


def _extract(arr: np.ndarray, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """arr[t] broadcast to ``like``'s shape: [B] -> [B, 1, ..., 1]."""
    out = torch.from_numpy(arr).to(device=t.device)[t].to(like.dtype)
    return out.view(-1, *([1] * (like.ndim - 1)))


class GaussianDiffusion:
    """One (possibly respaced) diffusion process; ``respace(steps, sampler)`` builds a shorter one.

    Args:
        num_timesteps: T of the training schedule (1000).
        learned_variance: the model outputs 2d channels (epsilon, v); else d channels and the
            "fixed large" variance (beta_t) is used for sampling.
        betas: override the schedule (used by respacing).
        timestep_map: original timestep of each step of this process (respacing).
    """

    samplers = ("ddpm", "ddim")

    def __init__(self, num_timesteps: int = 1000, learned_variance: bool = True,
                 betas: np.ndarray | None = None, timestep_map: list[int] | None = None):
        if num_timesteps < 1:
            raise ValueError(f"num_timesteps must be >= 1, got {num_timesteps}")
        self.learned_variance = learned_variance
        betas = linear_betas(num_timesteps) if betas is None else np.asarray(betas, dtype=np.float64)
        self.betas = betas
        self.num_timesteps = T = len(betas)
        self.original_num_timesteps = num_timesteps
        self.timestep_map = np.asarray(timestep_map if timestep_map is not None else range(T), dtype=np.int64)

        alphas = 1.0 - betas
        self.alphas_cumprod = ac = np.cumprod(alphas)
        self.alphas_cumprod_prev = acp = np.append(1.0, ac[:-1])
        self.sqrt_alphas_cumprod = np.sqrt(ac)
        self.sqrt_one_minus_alphas_cumprod = np.sqrt(1.0 - ac)
        self.sqrt_recip_alphas_cumprod = np.sqrt(1.0 / ac)
        self.sqrt_recipm1_alphas_cumprod = np.sqrt(1.0 / ac - 1)
        self.posterior_variance = pv = betas * (1.0 - acp) / (1.0 - ac)
        # log(0) at t = 0: ADM clips with the t = 1 value
        self.posterior_log_variance_clipped = np.log(np.append(pv[1], pv[1:])) if T > 1 else np.log(np.maximum(pv, 1e-20))
        self.posterior_mean_coef1 = betas * np.sqrt(acp) / (1.0 - ac)
        self.posterior_mean_coef2 = (1.0 - acp) * np.sqrt(alphas) / (1.0 - ac)
        self.log_betas = np.log(betas)
        # "fixed large" variance when it is not learned
        self.fixed_log_variance = np.log(np.append(pv[1], betas[1:])) if T > 1 else np.log(betas)

    def respace(self, steps: int, sampler: str = "ddpm") -> "GaussianDiffusion":
        """A ``steps``-step process over a subset of this one's timesteps (same marginals)."""
        keep = space_timesteps(self.num_timesteps, steps, sampler)
        new_betas, last = [], 1.0
        for i, a in enumerate(self.alphas_cumprod):
            if i in keep:
                new_betas.append(1.0 - a / last)
                last = a
        return GaussianDiffusion(self.original_num_timesteps, self.learned_variance, np.array(new_betas),
                                 [int(self.timestep_map[i]) for i in keep])

    def _model(self, model: ModelFn, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Call the model with original timesteps."""
        return model(x, torch.from_numpy(self.timestep_map).to(t.device)[t])

    # ---- forward process ----------------------------------------------------------------
    def q_sample(self, x_start: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps."""
        return _extract(self.sqrt_alphas_cumprod, t, x_start) * x_start + _extract(self.sqrt_one_minus_alphas_cumprod, t, x_start) * noise

    def q_posterior(self, x_start, x_t, t):
        """Mean and log-variance of q(x_{t-1} | x_t, x_0)."""
        mean = _extract(self.posterior_mean_coef1, t, x_t) * x_start + _extract(self.posterior_mean_coef2, t, x_t) * x_t
        return mean, _extract(self.posterior_log_variance_clipped, t, x_t)

    # ---- reverse process ----------------------------------------------------------------
    def p_mean_variance(self, model_output: torch.Tensor, x: torch.Tensor, t: torch.Tensor) -> dict:
        """From the model's output: mean, log-variance, predicted x_0 and epsilon of p(x_{t-1} | x_t)."""
        d = x.shape[-1]
        if self.learned_variance:
            if model_output.shape[-1] != 2 * d:
                raise ValueError(f"learned variance needs a model output of {2 * d} channels, got {model_output.shape[-1]}")
            eps, v = model_output.split(d, dim=-1)
            min_log = _extract(self.posterior_log_variance_clipped, t, x)
            max_log = _extract(self.log_betas, t, x)
            frac = (v + 1) / 2
            log_variance = frac * max_log + (1 - frac) * min_log
        else:
            if model_output.shape[-1] != d:
                raise ValueError(f"fixed variance needs a model output of {d} channels, got {model_output.shape[-1]}")
            eps = model_output
            log_variance = _extract(self.fixed_log_variance, t, x).expand_as(x)
        pred_xstart = _extract(self.sqrt_recip_alphas_cumprod, t, x) * x - _extract(self.sqrt_recipm1_alphas_cumprod, t, x) * eps
        mean, _ = self.q_posterior(pred_xstart, x, t)
        return {"mean": mean, "log_variance": log_variance, "pred_xstart": pred_xstart, "eps": eps}

    # ---- training -----------------------------------------------------------------------
    def training_losses(self, model: ModelFn, x_start: torch.Tensor, t: torch.Tensor | None = None,
                        noise: torch.Tensor | None = None, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Per-sample losses [B]: ``loss`` (= mse + vb), ``mse``, and ``vb`` with learned variance."""
        B = x_start.shape[0]
        if t is None:
            t = torch.randint(0, self.num_timesteps, (B,), device=x_start.device, generator=generator)
        if noise is None:
            noise = torch.randn(x_start.shape, device=x_start.device, dtype=x_start.dtype, generator=generator)
        x_t = self.q_sample(x_start, t, noise)
        out = self._model(model, x_t, t)
        d = x_start.shape[-1]
        eps = out[..., :d]
        terms = {"mse": mean_flat((noise - eps.float()) ** 2)}
        if self.learned_variance:
            # the bound trains only the variance: stop the gradient through the mean
            frozen = torch.cat([eps.detach(), out[..., d:]], dim=-1).float()
            terms["vb"] = self.vb_terms_bpd(frozen, x_start, x_t, t)
            terms["loss"] = terms["mse"] + terms["vb"]
        else:
            terms["loss"] = terms["mse"]
        return terms

    def vb_terms_bpd(self, model_output, x_start, x_t, t) -> torch.Tensor:
        """One term of the variational bound, in bits per dimension: [B]."""
        true_mean, true_log_var = self.q_posterior(x_start, x_t, t)
        out = self.p_mean_variance(model_output, x_t, t)
        kl = mean_flat(normal_kl(true_mean, true_log_var, out["mean"], out["log_variance"])) / math.log(2.0)
        nll = -mean_flat(discretized_gaussian_log_likelihood(x_start, out["mean"], 0.5 * out["log_variance"])) / math.log(2.0)
        return torch.where(t == 0, nll, kl)

    # ---- sampling -----------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, model: ModelFn, shape: tuple[int, ...], steps: int | None = None, sampler: str = "ddpm",
               generator: torch.Generator | None = None, device: str | torch.device = "cpu",
               noise: torch.Tensor | None = None, eta: float = 0.0, progress: bool = False) -> torch.Tensor:
        """Draw x_0 [shape] with ``sampler`` ("ddpm" or "ddim", eta for DDIM) in ``steps`` steps
        (default: every step of this process). Deterministic given ``generator``'s state."""
        if sampler not in self.samplers:
            raise ValueError(f"sampler must be one of {self.samplers} for Gaussian diffusion, got {sampler!r}")
        process = self if steps is None or steps == self.num_timesteps else self.respace(steps, sampler)
        x = noise if noise is not None else torch.randn(shape, generator=generator, device=device)
        indices = range(process.num_timesteps - 1, -1, -1)
        if progress:
            from tqdm.auto import tqdm

            indices = tqdm(indices, desc=f"{sampler} {process.num_timesteps} steps", leave=False)
        for i in indices:
            t = torch.full((x.shape[0],), i, device=x.device, dtype=torch.long)
            out = process.p_mean_variance(process._model(model, x, t).float(), x, t)
            if sampler == "ddpm":
                x = out["mean"]
                if i > 0:
                    x = x + torch.exp(0.5 * out["log_variance"]) * torch.randn(x.shape, generator=generator, device=x.device)
            else:
                x = process._ddim_step(out, x, t, eta, generator)
        return x

    def _ddim_step(self, out: dict, x: torch.Tensor, t: torch.Tensor, eta: float, generator) -> torch.Tensor:
        eps = (_extract(self.sqrt_recip_alphas_cumprod, t, x) * x - out["pred_xstart"]) / _extract(self.sqrt_recipm1_alphas_cumprod, t, x)
        abar = _extract(self.alphas_cumprod, t, x)
        abar_prev = _extract(self.alphas_cumprod_prev, t, x)
        sigma = eta * torch.sqrt((1 - abar_prev) / (1 - abar)) * torch.sqrt(1 - abar / abar_prev)
        x_prev = out["pred_xstart"] * torch.sqrt(abar_prev) + torch.sqrt(1 - abar_prev - sigma**2) * eps
        if eta > 0 and int(t[0]) > 0:
            x_prev = x_prev + sigma * torch.randn(x.shape, generator=generator, device=x.device)
        return x_prev
