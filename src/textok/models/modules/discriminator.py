"""StyleGAN2 discriminator ("resnet" architecture), sized by resolution.

Layout, as in StyleGAN2 / StyleGAN2-ADA (Karras et al.):

    fromRGB 1x1  ->  ResBlock(res -> res/2) ... down to 4x4  ->  epilogue
    ResBlock:  x -> conv3x3 -> conv3x3 (blur, stride 2)  +  skip: conv1x1 (blur, stride 2, no bias)
               summed and scaled by 1/sqrt(2)
    epilogue:  minibatch standard deviation (+1 channel) -> conv3x3 -> fc -> fc -> logit

Channels at resolution ``r`` are ``min(channel_base // r, channel_max)``. The defaults
(16384, 512) are StyleGAN2-ADA's ``paper256`` setting: 24,001,089 parameters at 256 px, the
"~24M" discriminator of the MAGVIT-v2 / TexTok recipe. ``SMALL_DISCRIMINATOR`` is a narrow
variant for the 32 / 64 px CPU presets (1,153,473 parameters at 32 px, 1,183,137 at 64 px).

Down-sampling blurs with the [1, 3, 3, 1] binomial filter before the stride-2 convolution, which
keeps the discriminator from seeing aliasing. Activations are leaky ReLU (0.2) times sqrt(2).

Initialisation: **equalised learning rate** (StyleGAN): weights are stored as N(0, 1) and
multiplied by 1/sqrt(fan_in) at run time, biases start at zero. With Adam this gives every
layer the same relative learning rate, which is what the StyleGAN recipe was tuned with.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

#: Narrow discriminator for the small (32 / 64 px) presets.
SMALL_DISCRIMINATOR = dict(channel_base=2048, channel_max=128)


class EqualConv2d(nn.Module):
    """Conv2d with equalised learning rate: weight ~ N(0, 1), scaled by 1/sqrt(fan_in) when used."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.scale = 1.0 / math.sqrt(in_channels * kernel_size**2)
        self.stride, self.padding = stride, padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, stride=self.stride, padding=self.padding)


class EqualLinear(nn.Module):
    """Linear layer with equalised learning rate."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.scale = 1.0 / math.sqrt(in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, self.bias)


class Blur(nn.Module):
    """Depth-wise [1, 3, 3, 1] x [1, 3, 3, 1] low-pass filter (sum 1) with symmetric zero padding."""

    def __init__(self, channels: int, pad: int):
        super().__init__()
        k = torch.tensor([1.0, 3.0, 3.0, 1.0])
        k = torch.outer(k, k)
        # a constant, not state: kept out of the state dict
        self.register_buffer("kernel", (k / k.sum()).expand(channels, 1, 4, 4).contiguous(), persistent=False)
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(x, [self.pad] * 4), self.kernel.to(x.dtype), groups=x.shape[1])


class ConvLayer(nn.Sequential):
    """[blur ->] conv (stride 2 when ``down``) [-> leaky ReLU * sqrt(2)]: [B, Cin, H, W] -> [B, Cout, H', W']."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, down: bool = False,
                 bias: bool = True, activate: bool = True):
        layers: list[nn.Module] = []
        if down:
            # StyleGAN2's padding: (filter taps - factor) + (kernel - 1), split evenly, so H' = H / 2
            layers.append(Blur(in_channels, pad=(4 - 2 + kernel_size - 1) // 2))
            layers.append(EqualConv2d(in_channels, out_channels, kernel_size, stride=2, padding=0, bias=bias))
        else:
            layers.append(EqualConv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=bias))
        if activate:
            layers.append(ScaledLeakyReLU())
        super().__init__(*layers)


class ScaledLeakyReLU(nn.Module):
    """Leaky ReLU (slope 0.2) with StyleGAN's gain sqrt(2), which keeps activations at unit variance."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x, 0.2) * math.sqrt(2.0)


class ResBlock(nn.Module):
    """Residual down-sampling block: [B, Cin, H, W] -> [B, Cout, H/2, W/2]."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv1 = ConvLayer(in_channels, in_channels, 3)
        self.conv2 = ConvLayer(in_channels, out_channels, 3, down=True)
        self.skip = ConvLayer(in_channels, out_channels, 1, down=True, bias=False, activate=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.conv2(self.conv1(x)) + self.skip(x)) / math.sqrt(2.0)


class MinibatchStd(nn.Module):
    """Appends the mean standard deviation over groups of samples as extra channels.

    Lets the discriminator see batch statistics (a cue against mode collapse). The group is the
    largest divisor of the batch size not above ``group_size``, so any batch size works.
    """

    def __init__(self, group_size: int = 4, num_channels: int = 1):
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, C, H, W] -> [B, C + num_channels, H, W]."""
        B, C, H, W = x.shape
        G = max(g for g in range(1, min(self.group_size, B) + 1) if B % g == 0)
        F_ = self.num_channels
        y = x.float().reshape(G, -1, F_, C // F_, H, W)  # [G, B/G, F, C/F, H, W]
        y = (y - y.mean(dim=0)).square().mean(dim=0)  # variance over the group
        y = (y + 1e-8).sqrt().mean(dim=(2, 3, 4))  # [B/G, F]
        y = y.reshape(-1, F_, 1, 1).repeat(G, 1, H, W).to(x.dtype)  # [B, F, H, W]
        return torch.cat([x, y], dim=1)


class StyleGANDiscriminator(nn.Module):
    """StyleGAN2 residual discriminator: images [B, 3, S, S] in [-1, 1] -> logits [B].

    ``image_size`` must be a power of two >= 8; one residual block halves the resolution from
    ``image_size`` down to 4.
    """

    def __init__(self, image_size: int = 256, channel_base: int = 16384, channel_max: int = 512,
                 mbstd_group_size: int = 4, mbstd_channels: int = 1, in_channels: int = 3):
        super().__init__()
        if not (isinstance(image_size, int) and image_size >= 8 and image_size & (image_size - 1) == 0):
            raise ValueError(f"StyleGANDiscriminator: image_size={image_size!r} must be a power of two >= 8")
        if channel_base <= 0 or channel_max <= 0:
            raise ValueError(f"StyleGANDiscriminator: channel_base={channel_base} and channel_max={channel_max} must be positive")
        self.image_size = image_size

        def ch(res: int) -> int:
            return max(1, min(channel_base // res, channel_max))

        c4 = ch(4)
        if c4 % mbstd_channels:
            raise ValueError(f"StyleGANDiscriminator: {c4} channels at 4x4 not divisible by mbstd_channels={mbstd_channels}")
        self.from_rgb = ConvLayer(in_channels, ch(image_size), 1)
        resolutions = [image_size // 2**i for i in range(int(math.log2(image_size)) - 2)]  # S, S/2, ..., 8
        self.blocks = nn.Sequential(*[ResBlock(ch(r), ch(r // 2)) for r in resolutions])
        self.mbstd = MinibatchStd(mbstd_group_size, mbstd_channels)
        self.conv = ConvLayer(c4 + mbstd_channels, c4, 3)
        self.fc = nn.Sequential(EqualLinear(c4 * 4 * 4, c4), ScaledLeakyReLU())
        self.out = EqualLinear(c4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, 3, S, S] -> logits [B] (real > fake)."""
        if x.ndim != 4 or x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            raise ValueError(f"StyleGANDiscriminator expects [B, 3, {self.image_size}, {self.image_size}] images, got {tuple(x.shape)}")
        x = self.blocks(self.from_rgb(x))
        x = self.conv(self.mbstd(x))
        return self.out(self.fc(x.flatten(1))).squeeze(1)
