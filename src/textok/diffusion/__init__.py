"""Diffusion objectives and samplers for the DiT on latent tokens.

``DiffusionConfig`` picks the objective; ``build_diffusion(config)`` returns an object with
``training_losses(model_fn, x0) -> {"loss": [B], ...}`` and
``sample(model_fn, shape, steps, sampler, generator, device) -> x0``:

- ``"gaussian"``: the DiT/ADM recipe (1000 linear steps, epsilon + learned variance, hybrid
  loss; samplers "ddpm" (respaced, 250 steps by default) and "ddim");
- ``"flow"``: rectified flow (velocity MSE; samplers "euler" and "heun").

Classifier-free guidance: ``guided_model(dit, Condition(labels=...|text=...), scale)``.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from .flow import FlowMatching
from .gaussian import GaussianDiffusion, linear_betas, space_timesteps
from .guidance import Condition, conditional_model, guided_model


@dataclasses.dataclass
class DiffusionConfig:
    objective: Literal["gaussian", "flow"] = "gaussian"
    num_timesteps: int = 1000  # gaussian: T of the training schedule
    learned_variance: bool = True  # gaussian: must match DiTConfig.learn_sigma
    sampler: str = ""  # default sampler: "ddpm" for gaussian, "euler" for flow
    steps: int = 0  # default sampling steps: 250 (ddpm) / 50 (ddim, flow)
    cfg_scale: float = 1.5  # default guidance scale (1 = none)

    def __post_init__(self):
        if self.objective not in ("gaussian", "flow"):
            raise ValueError(f"DiffusionConfig.objective={self.objective!r}: must be 'gaussian' or 'flow'")
        if self.num_timesteps < 1:
            raise ValueError(f"DiffusionConfig.num_timesteps={self.num_timesteps}: must be >= 1")
        if self.objective == "flow" and self.learned_variance:
            raise ValueError("DiffusionConfig.learned_variance=True: flow matching has no variance to learn; "
                             "set it false (and the DiT's learn_sigma false)")
        samplers = GaussianDiffusion.samplers if self.objective == "gaussian" else FlowMatching.samplers
        if self.sampler and self.sampler not in samplers:
            raise ValueError(f"DiffusionConfig.sampler={self.sampler!r}: must be one of {samplers} for {self.objective!r}")
        if self.steps < 0:
            raise ValueError(f"DiffusionConfig.steps={self.steps}: must be >= 0 (0 = the sampler's default)")
        if self.cfg_scale < 0:
            raise ValueError(f"DiffusionConfig.cfg_scale={self.cfg_scale}: must be >= 0")

    @property
    def default_sampler(self) -> str:
        return self.sampler or ("ddpm" if self.objective == "gaussian" else "euler")

    def default_steps(self, sampler: str) -> int:
        if self.steps:
            return self.steps
        return 250 if sampler == "ddpm" else 50


def build_diffusion(config: DiffusionConfig) -> GaussianDiffusion | FlowMatching:
    if config.objective == "gaussian":
        return GaussianDiffusion(config.num_timesteps, config.learned_variance)
    return FlowMatching()


__all__ = [
    "DiffusionConfig", "build_diffusion", "GaussianDiffusion", "FlowMatching", "Condition",
    "conditional_model", "guided_model", "linear_betas", "space_timesteps",
]
