"""StyleGAN discriminator: size, output shape, building blocks."""

import pytest
import torch

from textok.losses import SMALL_DISCRIMINATOR, StyleGANDiscriminator
from textok.models.modules.discriminator import MinibatchStd


def count(module):
    return sum(p.numel() for p in module.parameters())


def test_parameter_count_at_256px():
    d = StyleGANDiscriminator(256)
    assert count(d) == 24_001_089  # StyleGAN2-ADA "paper256" channels: ~24M
    assert 23.5e6 < count(d) < 24.5e6


def test_small_discriminator_sizes_and_output_shape():
    for size, expected in ((32, 1_153_473), (64, 1_183_137)):
        d = StyleGANDiscriminator(size, **SMALL_DISCRIMINATOR)
        assert count(d) == expected
        out = d(torch.randn(3, 3, size, size))
        assert out.shape == (3,) and torch.isfinite(out).all()


def test_discriminator_output_shape_and_gradients():
    d = StyleGANDiscriminator(32, channel_base=256, channel_max=32)
    x = torch.randn(5, 3, 32, 32, requires_grad=True)  # odd batch: minibatch-std group adapts
    out = d(x)
    assert out.shape == (5,)
    out.sum().backward()
    assert x.grad.abs().sum() > 0 and all(p.grad is not None for p in d.parameters())


def test_discriminator_rejects_bad_sizes():
    with pytest.raises(ValueError, match="power of two"):
        StyleGANDiscriminator(48)
    d = StyleGANDiscriminator(32, channel_base=256, channel_max=32)
    with pytest.raises(ValueError, match=r"\[B, 3, 32, 32\]"):
        d(torch.randn(2, 3, 64, 64))


def test_minibatch_std_appends_group_std():
    x = torch.randn(4, 6, 2, 2)
    y = MinibatchStd(group_size=4)(x)
    assert y.shape == (4, 7, 2, 2)
    expected = (x.var(dim=0, unbiased=False) + 1e-8).sqrt().mean()
    torch.testing.assert_close(y[:, 6], expected.expand(4, 2, 2))
