"""Building blocks shared by the models: the transformer block, posteriors, discriminators."""

from .discriminator import StyleGANDiscriminator
from .posterior import DiagonalGaussian
from .transformer import Attention, Block, Mlp, Transformer, modulate

__all__ = ["Attention", "Block", "Mlp", "Transformer", "modulate", "DiagonalGaussian", "StyleGANDiscriminator"]
