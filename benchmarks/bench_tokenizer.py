"""Encode + decode throughput of TexTok vs the Stable Diffusion VAE, side by side in one process.

    python benchmarks/bench_tokenizer.py                       # textok-b, 256 px, N = 32..256
    python benchmarks/bench_tokenizer.py --preset textok-mini-64 --image-size 64 --batch 8

Both models are randomly initialised: their speed does not depend on their weights. The
SD-VAE is diffusers' ``AutoencoderKL`` in the Stable Diffusion configuration (4 latent
channels, 8x down-sampling, block channels 128/256/512/512). The TexTok rows include the text
tokens (``--text-tokens``, real-length captions, masked padding) in both ViTs. Prints a
Markdown table with images/s, ms/image, the ratio to the SD-VAE row and parameter counts.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import platform

import torch
from common import timed

from textok import TexTok, TexTokConfig, TextEmbedding


def sd_vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, sample_size=256, layers_per_block=2,
        block_out_channels=(128, 256, 512, 512),
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
    )


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="textok-b")
    ap.add_argument("--image-size", type=int, default=256)
    ap.add_argument("--tokens", type=int, nargs="+", default=[32, 64, 128, 256])
    ap.add_argument("--text-tokens", type=int, default=32, help="caption length in tokens (a ~25-word caption)")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--dtypes", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--no-vae", action="store_true")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args(argv)

    device = args.device
    S, B = args.image_size, args.batch
    machine = torch.cuda.get_device_name() if device == "cuda" else f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    print(f"# bench_tokenizer: {datetime.date.today()} on {machine}, torch {torch.__version__}")
    print(f"# {args.preset} at {S} px, batch {B}, {args.text_tokens} text tokens; best of >= {args.reps} calls (>= 5 s) after {args.warmup} warm-up\n")
    print("| model | tokens | dtype | params (M) | ms / image | images / s | vs SD-VAE |")
    print("|---|---|---|---|---|---|---|")
    x = torch.rand(B, 3, S, S, device=device) * 2 - 1
    rows = []
    for dtype_name in args.dtypes:
        autocast = torch.autocast(device_type=device, dtype=torch.bfloat16) if dtype_name == "bf16" else contextlib.nullcontext()
        vae_time = None
        if not args.no_vae:
            vae = sd_vae().to(device).eval()
            n_vae = sum(p.numel() for p in vae.parameters())

            def run_vae():
                with torch.no_grad(), autocast:
                    vae.decode(vae.encode(x).latent_dist.mode()).sample

            vae_time = timed(run_vae, args.warmup, args.reps, device) / B
            print(f"| SD-VAE (AutoencoderKL) | {(S // 8) ** 2}x4 | {dtype_name} | {n_vae / 1e6:.1f} | {vae_time * 1e3:.1f} | {1 / vae_time:.2f} | 1.00 |", flush=True)
            vae = None  # rebinding, not del: run_vae is done with it
        for N in args.tokens:
            model = TexTok(TexTokConfig.from_preset(args.preset, image_size=S, num_tokens=N)).to(device).eval()
            L = args.text_tokens
            text = TextEmbedding(torch.randn(B, L, model.config.text_dim, device=device), torch.ones(B, L, dtype=torch.bool, device=device))

            def run_textok():
                with torch.no_grad(), autocast:
                    model.decode(model.encode(x, text), text)

            t = timed(run_textok, args.warmup, args.reps, device) / B
            ratio = f"{vae_time / t:.2f}" if vae_time else "-"
            n = model.num_parameters()["total"]
            print(f"| TexTok ({args.preset}) | {N}x8 | {dtype_name} | {n / 1e6:.1f} | {t * 1e3:.1f} | {1 / t:.2f} | {ratio} |", flush=True)
            rows.append((dtype_name, N, t, vae_time))
            model = None
    return rows


if __name__ == "__main__":
    main()
