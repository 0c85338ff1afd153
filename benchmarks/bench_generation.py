"""The speed claim: DiT-XL on TexTok tokens vs DiT-XL/2 on the SD-VAE latent grid, end to end.

    python benchmarks/bench_generation.py                          # 256 and 512 px, N = 32..256
    python benchmarks/bench_generation.py --resolutions 512 --tokens 32 --measure-steps 1
    python benchmarks/bench_generation.py --batch 16                # the same rows, 16 images per batch
    python benchmarks/bench_generation.py --max-throughput --throughput-steps 1   # + the batch that maximises images/s
    python benchmarks/bench_generation.py --throughput-only --throughput-steps 1 2  # that table alone

Per image, for the same sampler (DDPM with classifier-free guidance, so every step is one DiT
forward on a batch of 2B) and the same step count (``--steps``, 250 as in DiT):

    sampling = steps x (time of one guided DiT step)      [best of >= --measure-steps timed steps, scaled]
    end-to-end = sampling + decoder (+ text encoder for TexTok)

TexTok rows: DiT-XL (28 x 1152, 16 heads) with one DiT token per latent token (N tokens of
d = 8) + the TexTok-B detokenizer (ViT-B, patch 8 at 256 px / 16 at 512 px, 32 in-context
text tokens) + the MiniLM text encoder on a 25-word caption. Baseline rows: DiT-XL/2 on the
SD-VAE grid (32x32x4 at 256 px, 64x64x4 at 512 px; 2x2 patches -> 256 / 1024 DiT tokens of
2*2*4 = 16 values: the same network with a 16-wide token embedding, FLOP-for-FLOP DiT-XL/2)
+ the SD-VAE decoder (diffusers ``AutoencoderKL``, Stable Diffusion configuration).

Few-step rows (``--few-steps``, default 1 2 4): TexTok-B + DiT-XL trained with MeanFlow
(``DiTConfig.time_inputs=2``: a second timestep embedder for t - r) and its sampler, one DiT
forward on B images per step and no unconditional pass (MeanFlow trains guidance in), against
the same SD-VAE + DiT-XL/2 baseline with 250 guided DDPM steps. These rows are **timed in
full**: each timed call is the whole ``MeanFlow.sample`` (every step) plus the detokenizer; the
text encoder's time is added as in the other rows. The 250-step rows are **scaled from timed
steps** (above).

``--max-throughput`` adds a last table: for the SD-VAE + DiT-XL/2 baseline (250 guided DDPM
steps, scaled from one timed step at each batch, + the decoder on the same batch) and for each
few-step TexTok row (timed in full, text encoder included), the batch is doubled from 1 until
images/s gains less than ``--saturation`` (5%) or reaches ``--max-batch``; the row reports the
best batch found and its images/s, and every batch tried.

All models are randomly initialised (speed does not depend on the weights). The DiT's 28
blocks are built once and shared by every row (only the token embedding, positions and
output layer differ). A DiT step's time does not depend on the image size, only on the token
count, so the TexTok DiT rows are measured once and reused at both resolutions.
FLOPs (2 per multiply-add, attention included) come from ``DiT.flops_per_forward`` (equal to
``torch.utils.flop_counter`` on this model, see tests) and from ``FlopCounterMode`` on the meta
device for the decoders. The FLOPs ratio is the bound the measured ratio approaches when
matmuls dominate.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import gc
import platform

import torch
from common import timed

from textok import DiT, DiTConfig, TexTok, TexTokConfig, TextEmbedding
from textok.diffusion import MeanFlow

CAPTION = ("a golden retriever puppy sitting on a wooden porch in the late afternoon sun, looking at a red ball "
           "near a pot of flowers")  # 22 words


def sd_vae(sample_size: int):
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, sample_size=sample_size, layers_per_block=2,
        block_out_channels=(128, 256, 512, 512),
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
    )


def meta_flops(build, run) -> int:
    """FLOPs of ``run(model)`` for one image, counted on the meta device (no memory, no time)."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        model = build()
        with FlopCounterMode(display=False) as counter:
            run(model)
    return counter.get_total_flops()


class DiTBench:
    """DiT-XL rows sharing one set of 28 blocks."""

    def __init__(self, preset: str, device: str, dtype: torch.dtype):
        self.preset, self.device, self.dtype = preset, device, dtype
        self.blocks = None

    def model(self, num_tokens: int, token_dim: int, time_inputs: int = 1) -> DiT:
        cfg = DiTConfig.from_preset(self.preset, num_tokens=num_tokens, token_dim=token_dim, time_inputs=time_inputs,
                                    learn_sigma=time_inputs == 1)  # MeanFlow: d output channels
        small = DiT(dataclasses.replace(cfg, depth=1))  # everything but the blocks
        if self.blocks is None:
            self.blocks = DiT(cfg).transformer  # the 28 blocks, built once
        small.transformer = self.blocks
        small.config = cfg
        return small.to(self.device, self.dtype).eval()

    def step_time(self, num_tokens: int, token_dim: int, batch: int, warmup: int, reps: int) -> tuple[float, DiT]:
        """Seconds of one guided sampling step for ``batch`` images (a DiT forward on 2 x batch)."""
        model = self.model(num_tokens, token_dim)
        x = torch.randn(2 * batch, num_tokens, token_dim, device=self.device, dtype=self.dtype)
        t = torch.full((2 * batch,), 500, device=self.device)
        y = torch.arange(2 * batch, device=self.device) % 1000
        drop = torch.arange(2 * batch, device=self.device) >= batch  # the unconditional half

        def step():
            with torch.no_grad():
                model(x, t, labels=y, drop=drop)

        return timed(step, warmup, reps, self.device), model


def best_batch(seconds_per_image, max_batch: int, saturation: float) -> tuple[int, float, list[tuple[int, float]]]:
    """Double the batch from 1 while images/s gains at least ``saturation``; ``seconds_per_image(B)`` times one batch.

    Returns (best batch, its seconds per image, [(batch, seconds per image) for every batch tried]).
    """
    tried = []
    batch = 1
    while batch <= max_batch:
        tried.append((batch, seconds_per_image(batch)))
        print(f"#     batch {batch}: {tried[-1][1]:.4g} s / image", flush=True)
        if len(tried) > 1 and tried[-1][1] > tried[-2][1] * (1 - saturation):
            break  # saturated: doubling again would buy less than the threshold
        batch *= 2
    best = min(tried, key=lambda bt: bt[1])
    return best[0], best[1], tried


def throughput_table(args, bench: DiTBench, device: str, dtype: torch.dtype, encoder) -> list[dict]:
    """The batch that maximises images/s for the baseline and each few-step TexTok row (see the docstring)."""
    rows = []
    L, S = args.text_tokens, args.steps
    for res in args.resolutions:
        latent, base_N = res // 8, (res // 16) ** 2
        base_dit = bench.model(base_N, 16)
        vae = sd_vae(res).to(device, dtype).eval()

        def baseline(B):
            x = torch.randn(2 * B, base_N, 16, device=device, dtype=dtype)
            t = torch.full((2 * B,), 500, device=device)
            y = torch.arange(2 * B, device=device) % 1000
            drop = torch.arange(2 * B, device=device) >= B
            z = torch.randn(B, 4, latent, latent, device=device, dtype=dtype)
            with torch.no_grad():
                step = timed(lambda: base_dit(x, t, labels=y, drop=drop), args.warmup, args.measure_steps, device)
                dec = timed(lambda: vae.decode(z), 1, 2, device)
            return (S * step + dec) / B

        print(f"# {res} px, SD-VAE + {args.dit.upper()}/2, DDPM {S} steps + guidance (scaled from timed steps):", flush=True)
        b, sec, tried = best_batch(baseline, args.max_batch, args.saturation)
        base_sec = sec
        rows.append({"res": res, "name": f"SD-VAE + {args.dit.upper()}/2", "sampler": f"DDPM {S} steps + guidance",
                     "tokens": base_N, "batch": b, "total": sec, "tried": tried, "timing": "scaled from timed steps"})
        base_dit = vae = None  # frees them before the next model (rebinding, not del: the closures above are done)
        gc.collect()
        patch = 8 if res == 256 else 16
        for N in args.throughput_tokens or args.tokens:
            tcfg = TexTokConfig.from_preset("textok-b", image_size=res, patch_size=patch, num_tokens=N)
            tok = TexTok(tcfg).to(device, dtype).eval()
            mf_dit = bench.model(N, 8, time_inputs=2)
            for steps in args.throughput_steps or args.few_steps:
                def textok(B):
                    y = torch.arange(B, device=device) % 1000
                    captions = [CAPTION] * B

                    # the detokenizer sees L text tokens as in the other rows; the encoder runs for its time
                    text = TextEmbedding(torch.randn(B, L, tcfg.text_dim, device=device, dtype=dtype),
                                         torch.ones(B, L, dtype=torch.bool, device=device))

                    def e2e():
                        with torch.no_grad():
                            if encoder is not None:
                                encoder(captions)
                            z = MeanFlow().sample(lambda x, t, r: mf_dit(x, t, labels=y, r=r), (B, N, 8),
                                                  steps=steps, device=device)
                            tok.decode(z.to(dtype), text)

                    return timed(e2e, 1, 2, device) / B

                print(f"# {res} px, TexTok-B + {args.dit.upper()}, {N} tokens, MeanFlow {steps} step(s) (timed in full):",
                      flush=True)
                b, sec, tried = best_batch(textok, args.max_batch, args.saturation)
                rows.append({"res": res, "name": f"TexTok-B + {args.dit.upper()}", "sampler": f"MeanFlow {steps} step(s)",
                             "tokens": N, "batch": b, "total": sec, "tried": tried, "timing": "timed in full"})
            tok = mf_dit = None
            gc.collect()
        print(f"\n## {res} px, the batch that maximises images/s (doubling from 1 until images/s gains < "
              f"{args.saturation:.0%}, at most {args.max_batch})\n")
        print("| system | sampler | DiT tokens | best batch | end-to-end s / image | images / s | timing | "
              f"speed-up vs SD-VAE + {args.dit.upper()}/2 at its best batch | batches tried (s / image) |")
        print("|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            if r["res"] != res:
                continue
            r["speedup"] = base_sec / r["total"]
            tried = ", ".join(f"{b}: {s:.4g}" for b, s in r["tried"])
            print(f"| {r['name']} | {r['sampler']} | {r['tokens']} | {r['batch']} | {r['total']:.4g} | {1 / r['total']:.4g} "
                  f"| {r['timing']} | {r['speedup']:.1f}x | {tried} |", flush=True)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--resolutions", type=int, nargs="+", default=[256, 512], choices=[256, 512])
    ap.add_argument("--tokens", type=int, nargs="+", default=[32, 64, 128, 256])
    ap.add_argument("--steps", type=int, default=250, help="sampling steps the per-image times are scaled to")
    ap.add_argument("--measure-steps", type=int, default=2, help="guided DiT steps actually timed per row (median)")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--batch", type=int, default=1, help="images per sampling batch (the DiT sees 2x for guidance)")
    ap.add_argument("--few-steps", type=int, nargs="*", default=[1, 2, 4],
                    help="MeanFlow step counts for the few-step rows (timed in full); none: leave the rows out")
    ap.add_argument("--max-throughput", action="store_true",
                    help="also find, per system, the batch that maximises images/s (needs --few-steps)")
    ap.add_argument("--max-batch", type=int, default=64, help="--max-throughput: the largest batch tried")
    ap.add_argument("--throughput-only", action="store_true",
                    help="only the --max-throughput table (its batch-1 entries are the batch-1 times)")
    ap.add_argument("--throughput-tokens", type=int, nargs="*", default=None,
                    help="--max-throughput: token counts to sweep (default: --tokens)")
    ap.add_argument("--throughput-steps", type=int, nargs="*", default=None,
                    help="--max-throughput: MeanFlow step counts to sweep (default: --few-steps)")
    ap.add_argument("--saturation", type=float, default=0.05,
                    help="--max-throughput: stop doubling the batch once images/s gains less than this fraction")
    ap.add_argument("--dit", default="dit-xl")
    ap.add_argument("--text-tokens", type=int, default=32, help="caption tokens in the detokenizer")
    ap.add_argument("--no-text-encoder", action="store_true", help="leave out MiniLM's time")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    device, B = args.device, args.batch
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    machine = torch.cuda.get_device_name() if device == "cuda" else f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    print(f"# bench_generation: {datetime.date.today()} on {machine}, torch {torch.__version__}, {args.dtype}")
    print(f"# {args.dit} with guidance (DiT batch {2 * B} per step = {B} image(s)); {args.steps} steps, scaled from the "
          f"best of >= {args.measure_steps} timed step(s) (and >= 5 s of them) after {args.warmup} warm-up; "
          f"decoders: best of >= 2 after 1 warm-up\n",
          flush=True)

    text_sec, enc = 0.0, None
    if not args.no_text_encoder:
        from textok import TextEncoder

        enc = TextEncoder.from_pretrained("minilm", device=device)
        if not args.throughput_only:  # the throughput table times the encoder inside each call
            text_sec = timed(lambda: enc([CAPTION] * B), 1, 3, device) / B
            print(f"#   MiniLM text encoder: {text_sec * 1e3:.1f} ms / image", flush=True)
    if args.throughput_only:
        if not (args.throughput_steps or args.few_steps):
            raise SystemExit("--throughput-only compares the few-step rows: give --throughput-steps")
        return throughput_table(args, DiTBench(args.dit, device, dtype), device, dtype, enc)

    bench = DiTBench(args.dit, device, dtype)
    dit_rows = {}  # (N, d) -> (seconds per step, GFLOPs per forward per image, params)
    wanted = [(n, 8) for n in args.tokens] + [((r // 16) ** 2, 16) for r in args.resolutions]
    for N, d in wanted:
        sec, model = bench.step_time(N, d, B, args.warmup, args.measure_steps)
        dit_rows[(N, d)] = (sec, model.flops_per_forward(), sum(p.numel() for p in model.parameters()))
        print(f"#   DiT step, {N} tokens x {d}: {sec:.4g} s for {B} image(s) (forward on {2 * B})", flush=True)
        del model
        gc.collect()

    L = args.text_tokens
    results = []
    for res in args.resolutions:
        latent = res // 8
        vae = sd_vae(res).to(device, dtype).eval()
        z = torch.randn(B, 4, latent, latent, device=device, dtype=dtype)

        def vae_decode():
            with torch.no_grad():
                vae.decode(z)

        vae_sec = timed(vae_decode, 1, 2, device) / B
        vae_flops = meta_flops(lambda: sd_vae(res), lambda m: m.decode(torch.randn(1, 4, latent, latent)))
        vae_params = sum(p.numel() for p in vae.decoder.parameters()) + sum(p.numel() for p in vae.post_quant_conv.parameters())
        vae = None
        gc.collect()
        base_N = (res // 16) ** 2
        sec, flops, params = dit_rows[(base_N, 16)]
        base = {"res": res, "name": f"SD-VAE + {args.dit.upper()}/2", "tokens": f"{latent}x{latent}x4 -> {base_N}",
                "step": sec / B, "dit_gflops": flops / 1e9, "dec": vae_sec, "dec_gflops": vae_flops / 1e9, "text": 0.0}
        rows = [base]
        few = []  # MeanFlow rows: (N, steps, seconds per image for sampling + decoder, GFLOPs per image)
        patch = 8 if res == 256 else 16
        for N in args.tokens:
            tcfg = TexTokConfig.from_preset("textok-b", image_size=res, patch_size=patch, num_tokens=N)
            tok = TexTok(tcfg).to(device, dtype).eval()
            tokens = torch.randn(B, N, 8, device=device, dtype=dtype)
            text = TextEmbedding(torch.randn(B, L, tcfg.text_dim, device=device, dtype=dtype),
                                 torch.ones(B, L, dtype=torch.bool, device=device))

            def tok_decode():
                with torch.no_grad():
                    tok.decode(tokens, text)

            dec_sec = timed(tok_decode, 1, 2, device) / B
            dec_flops = meta_flops(lambda: TexTok(tcfg), lambda m: m.decode(
                torch.randn(1, N, 8), TextEmbedding(torch.randn(1, L, tcfg.text_dim), torch.ones(1, L, dtype=torch.bool))))
            if args.few_steps:
                mf_dit = bench.model(N, 8, time_inputs=2)
                y = torch.arange(B, device=device) % 1000
                few_forward = lambda x, t, r: mf_dit(x, t, labels=y, r=r)
                for steps in args.few_steps:
                    def few_step_e2e():
                        with torch.no_grad():
                            z = MeanFlow().sample(few_forward, (B, N, 8), steps=steps, device=device)
                            tok.decode(z.to(dtype), text)

                    few.append((N, steps, timed(few_step_e2e, 1, 2, device) / B,
                                (steps * mf_dit.flops_per_forward() + dec_flops) / 1e9))
                    print(f"#   MeanFlow {steps} step(s) + detokenizer, {N} tokens: {few[-1][2]:.4g} s / image", flush=True)
                mf_dit = None
            tok = None
            gc.collect()
            sec, flops, _ = dit_rows[(N, 8)]
            rows.append({"res": res, "name": f"TexTok-B + {args.dit.upper()}", "tokens": f"{N}x8 -> {N}", "step": sec / B,
                         "dit_gflops": flops / 1e9, "dec": dec_sec, "dec_gflops": dec_flops / 1e9, "text": text_sec})
        results += rows

        S = args.steps
        print(f"\n## {res} px ({S} steps, guidance: 2 DiT forwards per image per step)\n")
        print("| system | DiT tokens | DiT s / step / image | sampling s / image | decoder s / image | text s / image "
              "| end-to-end s / image | speed-up (measured) | DiT speed-up (measured) | speed-up (FLOPs bound) | "
              "end-to-end GFLOPs / image |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        base_total = S * base["step"] + base["dec"]
        base_gflops = S * 2 * base["dit_gflops"] + base["dec_gflops"]
        for r in rows:
            sampling = S * r["step"]
            total = sampling + r["dec"] + r["text"]
            gflops = S * 2 * r["dit_gflops"] + r["dec_gflops"]
            r.update(total=total, gflops=gflops, speedup=base_total / total, bound=base_gflops / gflops,
                     dit_speedup=base["step"] / r["step"])
            print(f"| {r['name']} | {r['tokens']} | {r['step']:.4g} | {sampling:.1f} | {r['dec']:.2f} | {r['text']:.3f} "
                  f"| {total:.1f} | {r['speedup']:.1f}x | {r['dit_speedup']:.1f}x | {r['bound']:.1f}x | {gflops:,.0f} |", flush=True)
        print("\nGFLOPs per forward per image: " + ", ".join(f"{r['tokens'].split(' -> ')[1]} tokens {r['dit_gflops']:.1f}" for r in rows)
              + f"; decoders: SD-VAE {base['dec_gflops']:.0f}, TexTok-B " + ", ".join(f"{r['dec_gflops']:.0f}" for r in rows[1:])
              + f"; SD-VAE decoder params {vae_params / 1e6:.1f}M")
        if few:
            print(f"\n## {res} px, few-step sampling (MeanFlow, guidance trained in: 1 DiT forward per image per step), "
                  f"batch {B}\n")
            print("| system | sampler | DiT tokens | DiT forwards / image | end-to-end s / image | timing | "
                  f"speed-up vs SD-VAE + {args.dit.upper()}/2 | end-to-end GFLOPs / image |")
            print("|---|---|---|---|---|---|---|---|")
            print(f"| {base['name']} | DDPM {S} steps + guidance | {base_N} | {2 * S} | {base_total:.1f} | scaled from "
                  f"timed steps | 1.0x | {base_gflops:,.0f} |")
            for N, steps, sec, gflops in few:
                total = sec + text_sec
                results.append({"res": res, "name": f"TexTok-B + {args.dit.upper()} (MeanFlow)", "tokens": f"{N}x8 -> {N}",
                                "steps": steps, "total": total, "gflops": gflops, "speedup": base_total / total,
                                "timing": "timed in full"})
                print(f"| TexTok-B + {args.dit.upper()} | MeanFlow {steps} step(s) | {N} | {steps} | {total:.4g} | timed in "
                      f"full | {base_total / total:.1f}x | {gflops:,.0f} |", flush=True)
    if args.max_throughput:
        if not (args.throughput_steps or args.few_steps):
            raise SystemExit("--max-throughput compares the few-step rows: give --few-steps")
        print()
        results += throughput_table(args, bench, device, dtype, enc)
    return results


if __name__ == "__main__":
    main()
