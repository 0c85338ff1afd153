"""Training losses: LPIPS (VGG16 v0.1, no torchvision), GAN losses, LeCAM, R1, and ``TexTokLoss``.

The StyleGAN discriminator lives with the other building blocks in
``textok.models.modules.discriminator`` and is re-exported here.
"""

from ..models.modules.discriminator import SMALL_DISCRIMINATOR, StyleGANDiscriminator
from .adversarial import LeCAM, adversarial_d_loss, adversarial_g_loss, r1_penalty
from .lpips import LPIPS, load_lpips_weights
from .textok_loss import LossConfig, TexTokLoss, adaptive_adversarial_weight

__all__ = [
    "LPIPS", "load_lpips_weights", "LossConfig", "TexTokLoss", "adaptive_adversarial_weight",
    "adversarial_g_loss", "adversarial_d_loss", "LeCAM", "r1_penalty",
    "StyleGANDiscriminator", "SMALL_DISCRIMINATOR",
]
