"""Diffusion objectives and samplers for the DiT on latent tokens.

``DiffusionConfig`` picks the objective; ``build_diffusion(config)`` returns an object with
``training_losses(model_fn, x0) -> {"loss": [B], ...}`` and
``sample(model_fn, shape, steps, sampler, generator, device) -> x0``:

- ``"gaussian"``: the DiT/ADM recipe (1000 linear steps, epsilon + learned variance, hybrid
  loss; samplers "ddpm" (respaced, 250 steps by default) and "ddim");
- ``"flow"``: rectified flow (velocity MSE; samplers "euler" and "heun");
- ``"meanflow"``: MeanFlow, average velocities over [r, t] for one- and few-step sampling
  (sampler "meanflow", 1 step by default; guidance can be trained in, ``meanflow.cfg_scale``).

``SAMPLERS`` is the one table of samplers: their objective and default step count.

Classifier-free guidance: ``guided_model(dit, Condition(labels=...|text=...), scale)``.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from .flow import FlowMatching
from .gaussian import GaussianDiffusion, linear_betas, space_timesteps
from .guidance import Condition, conditional_model, guided_model
from .meanflow import MeanFlow, MeanFlowConfig


@dataclasses.dataclass(frozen=True)
class SamplerInfo:
    objective: str  # the training objective whose models it samples
    default_steps: int
    about: str


#: Every sampler: its objective and default step count. DiffusionConfig and the CLI's
#: --sampler / --steps read this table; the first sampler of an objective is its default.
SAMPLERS: dict[str, SamplerInfo] = {
    "ddpm": SamplerInfo("gaussian", 250, "ancestral DDPM on a respaced schedule"),
    "ddim": SamplerInfo("gaussian", 50, "deterministic DDIM"),
    "euler": SamplerInfo("flow", 50, "Euler steps of the velocity"),
    "heun": SamplerInfo("flow", 50, "Heun steps (2nd order, one more call per step)"),
    "meanflow": SamplerInfo("meanflow", 1, "MeanFlow jumps z_r = z_t - (t - r) u(z_t, r, t)"),
}


@dataclasses.dataclass
class DiffusionConfig:
    objective: Literal["gaussian", "flow", "meanflow"] = "gaussian"
    num_timesteps: int = 1000  # gaussian: T of the training schedule
    learned_variance: bool = True  # gaussian: must match DiTConfig.learn_sigma
    sampler: str = ""  # default sampler: "ddpm" for gaussian, "euler" for flow, "meanflow" for meanflow
    steps: int = 0  # default sampling steps; 0 = the sampler's (SAMPLERS: 250 ddpm, 50 ddim / flow, 1 meanflow)
    cfg_scale: float | None = None  # default sampling guidance scale (1 = none); None: 1.5, or 1 for meanflow
    meanflow: MeanFlowConfig = dataclasses.field(default_factory=MeanFlowConfig)  # meanflow's training options

    def __post_init__(self):
        objectives = sorted({s.objective for s in SAMPLERS.values()})
        if self.objective not in objectives:
            raise ValueError(f"DiffusionConfig.objective={self.objective!r}: must be one of {objectives}")
        if self.num_timesteps < 1:
            raise ValueError(f"DiffusionConfig.num_timesteps={self.num_timesteps}: must be >= 1")
        if self.objective != "gaussian" and self.learned_variance:
            raise ValueError(f"DiffusionConfig.learned_variance=True: {self.objective} has no variance to learn; "
                             "set it false (and the DiT's learn_sigma false)")
        samplers = self.samplers
        if self.sampler and self.sampler not in samplers:
            raise ValueError(f"DiffusionConfig.sampler={self.sampler!r}: must be one of {samplers} for {self.objective!r}")
        if self.steps < 0:
            raise ValueError(f"DiffusionConfig.steps={self.steps}: must be >= 0 (0 = the sampler's default)")
        if self.cfg_scale is None:  # MeanFlow trains its guidance in: no unconditional pass by default
            self.cfg_scale = 1.0 if self.objective == "meanflow" else 1.5
        if self.cfg_scale < 0:
            raise ValueError(f"DiffusionConfig.cfg_scale={self.cfg_scale}: must be >= 0")

    @property
    def samplers(self) -> tuple[str, ...]:
        return tuple(name for name, s in SAMPLERS.items() if s.objective == self.objective)

    @property
    def default_sampler(self) -> str:
        return self.sampler or self.samplers[0]

    def default_steps(self, sampler: str) -> int:
        if self.steps:
            return self.steps
        return SAMPLERS[sampler].default_steps if sampler in SAMPLERS else 50


def build_diffusion(config: DiffusionConfig) -> GaussianDiffusion | FlowMatching | MeanFlow:
    if config.objective == "gaussian":
        return GaussianDiffusion(config.num_timesteps, config.learned_variance)
    if config.objective == "meanflow":
        return MeanFlow(config.meanflow)
    return FlowMatching()


__all__ = [
    "DiffusionConfig", "build_diffusion", "GaussianDiffusion", "FlowMatching", "MeanFlow", "MeanFlowConfig",
    "SAMPLERS", "SamplerInfo", "Condition",
    "conditional_model", "guided_model", "linear_betas", "space_timesteps",
]
