"""Classifier-free guidance (Ho & Salimans 2022) for a DiT trained with condition dropout.

    eps = eps_uncond + scale * (eps_cond - eps_uncond)

The conditional and unconditional halves run as one batch of 2B. Only the first ``d``
channels (the noise or velocity prediction) are guided; the learned-variance channels are the
conditional model's, as in DiT. ``scale == 1`` is the conditional model itself (the
unconditional half is skipped, not computed and cancelled). The model functions take an
optional third time, r (MeanFlow's interval start), and pass it to the DiT.
"""

from __future__ import annotations

import dataclasses

import torch

from ..text import TextEmbedding
from .gaussian import ModelFn


@dataclasses.dataclass
class Condition:
    """What a DiT is conditioned on: class labels [B] or a caption embedding (or neither)."""

    labels: torch.Tensor | None = None
    text: TextEmbedding | None = None

    def doubled(self) -> "Condition":
        """The batch twice over: [cond; cond] (the second half is then dropped to null)."""
        labels = None if self.labels is None else torch.cat([self.labels, self.labels])
        text = None if self.text is None else TextEmbedding.cat([self.text, self.text])
        return Condition(labels, text)


def conditional_model(dit: torch.nn.Module, cond: Condition) -> ModelFn:
    """``model_fn(x, t)`` (or ``(x, t, r)``) of ``dit`` under a fixed condition."""

    def model_fn(x: torch.Tensor, t: torch.Tensor, r: torch.Tensor | None = None) -> torch.Tensor:
        return dit(x, t, labels=cond.labels, text=cond.text, r=r)

    return model_fn


def guided_model(dit: torch.nn.Module, cond: Condition, scale: float, force_batched: bool = False) -> ModelFn:
    """``model_fn(x, t)`` with classifier-free guidance at ``scale`` (1 = no guidance).

    ``force_batched`` runs the two-half computation even at scale 1 (tests use it to check the
    formula against the conditional model).
    """
    if scale < 0:
        raise ValueError(f"guidance scale must be >= 0, got {scale}")
    if scale == 1.0 and not force_batched:
        return conditional_model(dit, cond)
    if dit.config.condition == "none":
        raise ValueError("classifier-free guidance needs a conditional DiT (condition='class' or 'text')")
    both = cond.doubled()
    d = dit.config.token_dim

    def model_fn(x: torch.Tensor, t: torch.Tensor, r: torch.Tensor | None = None) -> torch.Tensor:
        B = x.shape[0]
        drop = torch.cat([torch.zeros(B, dtype=torch.bool), torch.ones(B, dtype=torch.bool)]).to(x.device)
        out = dit(torch.cat([x, x]), torch.cat([t, t]), labels=both.labels, text=both.text, drop=drop,
                  r=None if r is None else torch.cat([r, r]))
        cond_out, uncond_out = out[:B], out[B:]
        guided = uncond_out[..., :d] + scale * (cond_out[..., :d] - uncond_out[..., :d])
        return torch.cat([guided, cond_out[..., d:]], dim=-1)

    return model_fn
