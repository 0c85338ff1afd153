"""Time the loss components (forward + backward): LPIPS, the StyleGAN discriminator, a full
TexTokLoss generator and discriminator step (GAN on, R1 on).

    .venv/bin/python benchmarks/bench_losses.py --size 64 --batch 16 --small-disc
    .venv/bin/python benchmarks/bench_losses.py --size 256 --batch 8 --device cuda

Prints one line per component: median milliseconds per call over ``--repeat`` calls.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from textok.losses import LPIPS, SMALL_DISCRIMINATOR, LossConfig, TexTokLoss
from textok.models.modules.posterior import DiagonalGaussian
from textok.models.textok import TexTokOutput


def timed(fn, repeat: int, device: torch.device) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def main() -> None:
    p = argparse.ArgumentParser(description="time LPIPS / discriminator / TexTokLoss steps")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--small-disc", action="store_true", help="the narrow discriminator of the CPU presets")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    disc = SMALL_DISCRIMINATOR if args.small_disc else {}
    config = LossConfig(discriminator_start=0, r1_every=1, discriminator_channel_base=disc.get("channel_base", 16384),
                        discriminator_channel_max=disc.get("channel_max", 512))
    loss = TexTokLoss(config, args.size).to(device)
    lpips: LPIPS = loss.lpips
    D = loss.discriminator
    x = torch.rand(args.batch, 3, args.size, args.size, device=device) * 2 - 1
    rec = (x + 0.1 * torch.randn_like(x)).requires_grad_(True)
    mean = torch.randn(args.batch, 16, 8, device=device)
    out = TexTokOutput(rec, DiagonalGaussian(mean, torch.zeros_like(mean)), mean)

    def lpips_step():
        lpips(rec, x).sum().backward()

    def disc_step():
        D(x).sum().backward()

    def generator_step():
        loss.generator_loss(x, out, step=0)[0].backward()

    def discriminator_step():
        loss.discriminator_loss(x, rec.detach(), step=0)[0].backward()

    n_disc = sum(q.numel() for q in D.parameters())
    print(f"device={device} threads={args.threads} size={args.size} batch={args.batch} discriminator params={n_disc:,}")
    for name, fn in (("lpips fwd+bwd", lpips_step), ("discriminator fwd+bwd", disc_step),
                     ("generator_loss fwd+bwd (l2+lpips+kl+adv)", generator_step),
                     ("discriminator_loss fwd+bwd (hinge+lecam+R1)", discriminator_step)):
        ms = timed(fn, args.repeat, device)
        print(f"{name:48s} {ms:9.1f} ms   {args.batch / ms * 1e3:8.1f} images/s")


if __name__ == "__main__":
    main()
