"""Rectified flow / flow matching (Liu et al. 2022; Lipman et al. 2022; as in SiT and SD3).

The straight path x_t = (1 - t) x_0 + t eps, t in [0, 1], has the constant velocity
v = eps - x_0; the network regresses it (MSE). Sampling integrates dx/dt = v(x, t) from t = 1
(noise) to t = 0 (data) with Euler or Heun (2nd order; one more network call per step except
the last). The network sees t scaled by ``time_scale`` (1000) so the DiT's timestep embedding
works on the same range as for the Gaussian recipe; its output must have d channels
(``DiTConfig.learn_sigma=False``).
"""

from __future__ import annotations

import torch

from .gaussian import ModelFn, mean_flat


def time_pairs(steps: int, progress: bool = False, desc: str = "sampling"):
    """The ``steps`` uniform intervals (t, t_next) from noise (t = 1) to data (t = 0), shared by
    the flow and MeanFlow samplers; with a progress bar if asked."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    ts = torch.linspace(1.0, 0.0, steps + 1).tolist()
    pairs = list(zip(ts[:-1], ts[1:]))
    if progress:
        from tqdm.auto import tqdm

        pairs = tqdm(pairs, desc=f"{desc} {steps} step(s)", leave=False)
    return pairs


class FlowMatching:
    samplers = ("euler", "heun")

    def __init__(self, time_scale: float = 1000.0, default_steps: int = 50):
        self.time_scale = time_scale
        self.default_steps = default_steps
        self.learned_variance = False

    def _velocity(self, model: ModelFn, x: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
        t = torch.as_tensor(t, device=x.device, dtype=torch.float32)
        if t.ndim == 0:
            t = t.expand(x.shape[0])
        v = model(x, t * self.time_scale)
        if v.shape != x.shape:
            raise ValueError(f"flow matching needs a model output of {x.shape[-1]} channels (learn_sigma=False), "
                             f"got shape {tuple(v.shape)}")
        return v.float()

    def training_losses(self, model: ModelFn, x_start: torch.Tensor, t: torch.Tensor | None = None,
                        noise: torch.Tensor | None = None, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Per-sample losses [B]: ``loss`` = ``mse`` between predicted and true velocity."""
        B = x_start.shape[0]
        if t is None:
            t = torch.rand(B, device=x_start.device, generator=generator)
        if noise is None:
            noise = torch.randn(x_start.shape, device=x_start.device, dtype=x_start.dtype, generator=generator)
        tt = t.view(-1, *([1] * (x_start.ndim - 1))).to(x_start.dtype)
        x_t = (1 - tt) * x_start + tt * noise
        mse = mean_flat((self._velocity(model, x_t, t) - (noise - x_start).float()) ** 2)
        return {"loss": mse, "mse": mse}

    @torch.no_grad()
    def sample(self, model: ModelFn, shape: tuple[int, ...], steps: int | None = None, sampler: str = "euler",
               generator: torch.Generator | None = None, device: str | torch.device = "cpu",
               noise: torch.Tensor | None = None, progress: bool = False, **_) -> torch.Tensor:
        """Integrate from noise (t = 1) to data (t = 0) in ``steps`` uniform steps."""
        if sampler not in self.samplers:
            raise ValueError(f"sampler must be one of {self.samplers} for flow matching, got {sampler!r}")
        x = noise if noise is not None else torch.randn(shape, generator=generator, device=device)
        for t, t_next in time_pairs(steps or self.default_steps, progress, sampler):
            dt = t_next - t
            v = self._velocity(model, x, t)
            x_euler = x + dt * v
            if sampler == "heun" and t_next > 0:
                x = x + dt * 0.5 * (v + self._velocity(model, x_euler, t_next))
            else:
                x = x_euler
        return x
