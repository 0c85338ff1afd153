"""GAN losses and discriminator regularisers: hinge / non-saturating, LeCAM, R1.

Logits are [B] tensors (``StyleGANDiscriminator`` output); every loss returns a scalar.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

AdversarialKind = Literal["hinge", "non-saturating"]


def _check_kind(kind: str) -> None:
    if kind not in ("hinge", "non-saturating"):
        raise ValueError(f"adversarial_loss must be 'hinge' or 'non-saturating', got {kind!r}")


def adversarial_g_loss(fake_logits: torch.Tensor, kind: AdversarialKind = "hinge") -> torch.Tensor:
    """Generator loss on D(G(z)) [B].

    hinge: -mean(D(G(z)));  non-saturating: mean(softplus(-D(G(z)))) = -mean(log sigmoid(D(G(z)))).
    """
    _check_kind(kind)
    fake_logits = fake_logits.float()
    if kind == "hinge":
        return -fake_logits.mean()
    return F.softplus(-fake_logits).mean()


def adversarial_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, kind: AdversarialKind = "hinge") -> torch.Tensor:
    """Discriminator loss on D(x) [B] and D(G(z)) [B].

    hinge: mean(relu(1 - D(x))) + mean(relu(1 + D(G(z))));
    non-saturating: mean(softplus(-D(x))) + mean(softplus(D(G(z)))).
    """
    _check_kind(kind)
    real_logits, fake_logits = real_logits.float(), fake_logits.float()
    if kind == "hinge":
        return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


class LeCAM(nn.Module):
    """LeCAM regulariser (Tseng et al., CVPR 2021) with EMA anchors of the real and fake logits.

        alpha_R <- decay * alpha_R + (1 - decay) * mean(D(x))        (same for alpha_F on D(G(z)))
        R_LC = mean(relu(D(x) - alpha_F)^2) + mean(relu(alpha_R - D(G(z)))^2)

    This is the form of the authors' code (google/lecam-gan): real logits are pulled down only
    when above the fake anchor, fake logits pulled up only when below the real anchor. The
    anchors are buffers, so they are saved with the state dict and restored on resume. They
    start at 0. Calling the module updates the anchors (when training) and then returns R_LC.
    """

    def __init__(self, decay: float = 0.999):
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"LeCAM decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.register_buffer("ema_real", torch.zeros(()))
        self.register_buffer("ema_fake", torch.zeros(()))

    @torch.no_grad()
    def update(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> None:
        self.ema_real.lerp_(real_logits.detach().float().mean(), 1.0 - self.decay)
        self.ema_fake.lerp_(fake_logits.detach().float().mean(), 1.0 - self.decay)

    def penalty(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        """R_LC with the current anchors (no update): scalar."""
        real_logits, fake_logits = real_logits.float(), fake_logits.float()
        return (F.relu(real_logits - self.ema_fake).square().mean()
                + F.relu(self.ema_real - fake_logits).square().mean())

    def forward(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.update(real_logits, fake_logits)
        return self.penalty(real_logits, fake_logits)


def r1_penalty(real_logits: torch.Tensor, real_images: torch.Tensor) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): mean over the batch of ||d D(x) / d x||^2, a scalar.

    ``real_images`` [B, C, H, W] must have ``requires_grad=True`` and ``real_logits`` [B] must have
    been computed from them. The graph is kept (``create_graph``) so the penalty trains D. The
    caller multiplies by gamma / 2 (and by the interval k for lazy regularisation).
    """
    if not real_images.requires_grad:
        raise ValueError("r1_penalty: real_images must require grad (call .requires_grad_(True) before D(x))")
    (grad,) = torch.autograd.grad(real_logits.float().sum(), real_images, create_graph=True)
    return grad.float().square().flatten(1).sum(dim=1).mean()
