"""The TexTok training objective: L2 (and / or L1) + LPIPS + KL + adversarial, with LeCAM and R1.

Generator (tokenizer + detokenizer) step:

    L_G = l2_weight * ||x - x_hat||^2  +  l1_weight * |x - x_hat|
        + perceptual_weight * LPIPS(x_hat, x)                    (on a perceptual_fraction of the batch)
        + kl_weight * KL(q(z|x) || N(0, I))                     (KL latent only)
        + w_adv * adversarial_g_loss(D(x_hat))                  (from discriminator_start on)

    w_adv = adversarial_weight, or, with ``adaptive_weight``, adversarial_weight times VQGAN's
    ||grad_last L_rec|| / (||grad_last L_adv|| + 1e-4) (clamped to [0, 1e4], no gradient) on the
    decoder's last layer.

Discriminator step (from discriminator_start on):

    L_D = adversarial_d_loss(D(x), D(x_hat))  +  lecam_weight * R_LC
        + [every r1_every steps]  r1_every * r1_weight / 2 * E ||grad_x D(x)||^2

``r1_weight`` is StyleGAN's gamma; the factor ``r1_every`` is lazy regularisation (StyleGAN2):
the penalty is applied every k steps at k times the strength.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..models.modules.discriminator import StyleGANDiscriminator
from .adversarial import LeCAM, adversarial_d_loss, adversarial_g_loss, r1_penalty
from .lpips import LPIPS


@dataclasses.dataclass
class LossConfig:
    """Weights of the training objective. Defaults: the MAGVIT-v2-style recipe for this model family (ImageNet scale).

    For the 32 / 64 px CPU presets use a narrow discriminator
    (``discriminator_channel_base=2048, discriminator_channel_max=128``) and an early
    ``discriminator_start`` (a few hundred steps); see docs/losses.md.
    """

    l2_weight: float = 1.0
    # the mean absolute error (VQGAN's reconstruction term); off in the paper's recipe. On the scenes
    # speedrun it did not pay: small objects on a flat background pull L1 (a per-pixel median) to the
    # background (docs/results/speedrun.md)
    l1_weight: float = 0.0
    perceptual_weight: float = 0.1
    # LPIPS on the first ceil(fraction * B) images of each micro-batch only (the sampler
    # shuffles, so they are a random subset): an unbiased estimate of the batch mean at a
    # fraction of the cost. LPIPS's VGG is most of a small-preset CPU step
    # (docs/results/throughput.md); quality at 0.25 vs 1.0: docs/RESULTS.md.
    perceptual_fraction: float = 1.0
    adversarial_weight: float = 0.1  # 0 disables the GAN: no discriminator is built
    adversarial_loss: Literal["hinge", "non-saturating"] = "hinge"
    lecam_weight: float = 1e-4
    lecam_ema_decay: float = 0.999
    r1_weight: float = 10.0  # gamma: penalty = gamma / 2 * E||grad_x D(x)||^2
    r1_every: int = 16  # lazy R1: applied every k D steps, scaled by k
    kl_weight: float = 1e-6  # only used by the KL latent
    discriminator_start: int = 80_000  # first step (generator and discriminator) with the GAN on
    adaptive_weight: bool = False  # VQGAN's adaptive adversarial weight (needs last_layer)
    discriminator_channel_base: int = 16384  # channels at resolution r: min(base // r, max)
    discriminator_channel_max: int = 512

    def __post_init__(self):
        def need(ok: bool, field: str, why: str):
            if not ok:
                raise ValueError(f"LossConfig.{field}={getattr(self, field)!r}: {why}")

        for name in ("l2_weight", "l1_weight", "perceptual_weight", "adversarial_weight", "lecam_weight", "r1_weight",
                     "kl_weight"):
            need(getattr(self, name) >= 0, name, "must be >= 0")
        need(0 < self.perceptual_fraction <= 1, "perceptual_fraction", "must lie in (0, 1]")
        need(self.adversarial_loss in ("hinge", "non-saturating"), "adversarial_loss", "must be 'hinge' or 'non-saturating'")
        need(0 <= self.lecam_ema_decay < 1, "lecam_ema_decay", "must be in [0, 1)")
        need(isinstance(self.r1_every, int) and self.r1_every >= 1, "r1_every", "must be an integer >= 1")
        need(isinstance(self.discriminator_start, int) and self.discriminator_start >= 0, "discriminator_start", "must be an integer >= 0")
        for name in ("discriminator_channel_base", "discriminator_channel_max"):
            need(isinstance(getattr(self, name), int) and getattr(self, name) > 0, name, "must be a positive integer")


@contextlib.contextmanager
def _frozen(module: nn.Module):
    """Temporarily stop gradients into ``module``'s parameters (inputs still get gradients)."""
    flags = [p.requires_grad for p in module.parameters()]
    for p in module.parameters():
        p.requires_grad_(False)
    try:
        yield module
    finally:
        for p, flag in zip(module.parameters(), flags):
            p.requires_grad_(flag)


def adaptive_adversarial_weight(rec_loss: torch.Tensor, adv_loss: torch.Tensor, last_layer: torch.Tensor) -> torch.Tensor:
    """VQGAN's balance: ||d rec / d last|| / (||d adv / d last|| + 1e-4), clamped to [0, 1e4], detached."""
    rec_grad = torch.autograd.grad(rec_loss, last_layer, retain_graph=True)[0]
    adv_grad = torch.autograd.grad(adv_loss, last_layer, retain_graph=True)[0]
    weight = rec_grad.float().norm() / (adv_grad.float().norm() + 1e-4)
    return weight.clamp(0.0, 1e4).detach()


class TexTokLoss(nn.Module):
    """Losses for training TexTok; holds LPIPS, the discriminator and the LeCAM anchors.

    ``discriminator`` (a ``StyleGANDiscriminator`` for ``image_size``) and ``lecam`` exist only
    when ``adversarial_weight > 0``, ``lpips`` only when ``perceptual_weight > 0``. The state
    dict holds the discriminator and the LeCAM anchors (LPIPS is frozen and not saved), so
    saving / loading it resumes the GAN exactly. Optimise ``loss.discriminator.parameters()``
    with its own optimiser.
    """

    def __init__(self, config: LossConfig, image_size: int, lpips: LPIPS | None = None):
        super().__init__()
        self.config = config
        self.image_size = image_size
        self.lpips = (lpips or LPIPS()) if config.perceptual_weight > 0 else None
        if config.adversarial_weight > 0:
            self.discriminator = StyleGANDiscriminator(
                image_size, channel_base=config.discriminator_channel_base, channel_max=config.discriminator_channel_max)
            self.lecam = LeCAM(config.lecam_ema_decay)
        else:
            self.discriminator = None
            self.lecam = None

    def discriminator_active(self, step: int) -> bool:
        return self.discriminator is not None and step >= self.config.discriminator_start

    def generator_loss(self, images: torch.Tensor, output, step: int,
                       last_layer: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """images [B, 3, H, W] in [-1, 1], output a ``TexTokOutput`` -> (scalar loss, stats).

        ``last_layer``: the detokenizer's last weight, needed when ``adaptive_weight`` is on (and
        gradients are enabled; without gradients, e.g. in validation, the factor is 1).
        The discriminator's parameters get no gradient from this loss.
        """
        c = self.config
        rec = output.reconstruction
        if rec.shape != images.shape:
            raise ValueError(f"generator_loss: reconstruction {tuple(rec.shape)} and images {tuple(images.shape)} differ")
        stats: dict[str, torch.Tensor] = {}
        stats["g/l2"] = l2 = F.mse_loss(rec.float(), images.float())
        rec_loss = c.l2_weight * l2
        if c.l1_weight > 0:
            stats["g/l1"] = l1 = F.l1_loss(rec.float(), images.float())
            rec_loss = rec_loss + c.l1_weight * l1
        if self.lpips is not None:
            k = max(1, math.ceil(c.perceptual_fraction * images.shape[0]))
            stats["g/lpips"] = perceptual = self.lpips(rec[:k], images[:k]).mean()
            rec_loss = rec_loss + c.perceptual_weight * perceptual
        total = rec_loss
        posterior = output.posterior
        if not posterior.deterministic:  # KL term only for the KL latent
            stats["g/kl"] = kl = posterior.kl().float().mean()
            if c.kl_weight > 0:
                total = total + c.kl_weight * kl
        if self.discriminator_active(step):
            with _frozen(self.discriminator) as disc:
                fake_logits = disc(rec)
            stats["g/adv"] = g_adv = adversarial_g_loss(fake_logits, c.adversarial_loss)
            weight = torch.tensor(c.adversarial_weight, device=rec.device)
            if c.adaptive_weight and torch.is_grad_enabled():
                if last_layer is None:
                    raise ValueError("generator_loss: LossConfig.adaptive_weight=True needs last_layer (the decoder's last weight)")
                weight = weight * adaptive_adversarial_weight(rec_loss, g_adv, last_layer)
            stats["g/adv_weight"] = weight
            stats["g/logits_fake"] = fake_logits.detach().float().mean()
            total = total + weight * g_adv
        stats["g/total"] = total
        return total, _to_floats(stats)

    def discriminator_loss(self, images: torch.Tensor, reconstructions: torch.Tensor, step: int,
                           discriminator: nn.Module | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """images, reconstructions [B, 3, H, W] (reconstructions detached here) -> (scalar loss, stats).

        Before ``discriminator_start`` (or with no discriminator) returns a zero loss that still
        has a graph, so ``backward()`` is harmless; ``stats["d/active"]`` says which case it was.
        ``discriminator`` may be a wrapped ``self.discriminator`` (e.g. DistributedDataParallel).
        On steps with ``step % r1_every == 0`` the R1 penalty is added, scaled by ``r1_every``.
        """
        c = self.config
        if not self.discriminator_active(step):
            params = list(self.discriminator.parameters()) if self.discriminator is not None else []
            zero = sum((p.sum() for p in params), images.new_zeros((), requires_grad=not params)) * 0.0
            return zero, {"d/active": 0.0}
        disc = discriminator if discriminator is not None else self.discriminator
        do_r1 = c.r1_weight > 0 and step % c.r1_every == 0
        real = images.detach().requires_grad_(do_r1)
        real_logits = disc(real)
        fake_logits = disc(reconstructions.detach())
        stats: dict[str, torch.Tensor] = {}
        stats["d/adv"] = total = adversarial_d_loss(real_logits, fake_logits, c.adversarial_loss)
        if c.lecam_weight > 0:
            stats["d/lecam"] = lecam = self.lecam(real_logits, fake_logits)
            total = total + c.lecam_weight * lecam
        if do_r1:
            stats["d/r1"] = r1 = r1_penalty(real_logits, real)
            total = total + (c.r1_weight / 2) * c.r1_every * r1
        stats["d/logits_real"] = real_logits.detach().float().mean()
        stats["d/logits_fake"] = fake_logits.detach().float().mean()
        stats["d/total"] = total
        out = _to_floats(stats)
        out["d/active"] = 1.0
        return total, out


def _to_floats(stats: dict[str, torch.Tensor]) -> dict[str, float]:
    """Tensors -> Python floats with a single device sync."""
    values = torch.stack([v.detach().float().reshape(()) for v in stats.values()]).tolist()
    return dict(zip(stats.keys(), values))
