"""The exponential moving average of the trained model's weights: what ``model/`` holds."""

from __future__ import annotations

import copy

import torch
import torch.nn as nn

from .task import unwrap


class EMA:
    """Exponential moving average of a model's parameters (buffers are copied)."""

    def __init__(self, model: nn.Module):
        self.model = copy.deepcopy(unwrap(model)).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module, decay: float) -> None:
        model = unwrap(model)
        ema_p = [p for p in self.model.parameters()]
        cur_p = [p.detach() for p in model.parameters()]
        torch._foreach_lerp_(ema_p, cur_p, 1.0 - decay)
        for b_ema, b in zip(self.model.buffers(), model.buffers()):
            b_ema.copy_(b)


def ema_decay(cfg, updates: int) -> float:
    return min(cfg.decay, (1 + updates) / (10 + updates)) if cfg.warmup else cfg.decay


__all__ = ["EMA", "ema_decay"]
