"""Latent-token posteriors: a diagonal Gaussian (KL tokenizer) and its deterministic limit."""

from __future__ import annotations

import torch


class DiagonalGaussian:
    """N(mean, exp(logvar)) over the tokens [B, N, d], as diffusers' ``latent_dist``.

    With ``logvar=None`` it is deterministic: ``sample() == mode() == mean`` and ``kl() == 0``.
    """

    def __init__(self, mean: torch.Tensor, logvar: torch.Tensor | None = None):
        self.mean = mean
        self.deterministic = logvar is None
        if logvar is not None:
            # the clamp keeps exp() finite early in training, as in LDM/diffusers
            self.logvar = logvar.clamp(-30.0, 20.0)
            self.std = torch.exp(0.5 * self.logvar)
        else:
            self.logvar = torch.zeros_like(mean)
            self.std = torch.zeros_like(mean)

    @classmethod
    def from_moments(cls, moments: torch.Tensor) -> "DiagonalGaussian":
        """moments [B, N, 2d] = concat(mean, logvar) on the last axis."""
        mean, logvar = moments.chunk(2, dim=-1)
        return cls(mean, logvar)

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        if self.deterministic:
            return self.mean
        noise = torch.randn(self.mean.shape, generator=generator, device=self.mean.device, dtype=self.mean.dtype)
        return self.mean + self.std * noise

    def mode(self) -> torch.Tensor:
        return self.mean

    def kl(self) -> torch.Tensor:
        """KL to N(0, I), summed over tokens and channels: [B]."""
        if self.deterministic:
            return torch.zeros(self.mean.shape[0], device=self.mean.device, dtype=self.mean.dtype)
        var = self.std**2
        return 0.5 * (self.mean**2 + var - 1.0 - self.logvar).flatten(1).sum(dim=1)
