"""Tokenizer training throughput: images/s, the time of each part of a step, FLOPs and the
fraction of the machine's *measured* matmul throughput that a step achieves.

Per preset (``textok-mini-32`` at 32 px and ``textok-mini-64`` at 64 px on a CPU; ``textok-b``
at 256 px when CUDA is available), with the recipe of its config (``configs/emoji32_textok.yaml``,
``configs/emoji64_textok.yaml``, ``configs/imagenet256_textok_b.yaml``) and:

- **step**: the full ``Trainer.train_step`` end to end, with the next batch taken from the
  Trainer's own loader (what ``textok train-tokenizer`` runs); ``images_per_s`` = batch / mean
  seconds per step over ``--steps`` steps after ``--warmup`` steps.
- **parts** (median seconds over ``--steps`` calls each, on the same trainer):
  ``data_s`` (next batch from the Trainer's loader, to the device, text embeddings looked up),
  ``tokenizer_fwd_s`` and ``tokenizer_bwd_s`` (TexTok forward; backward of L2 + KL),
  ``lpips_s`` (LPIPS forward + backward on the first ceil(f * B) images),
  ``discriminator_s`` (``--gan`` only: the generator's adversarial term through the frozen
  discriminator, plus the discriminator step with LeCAM and R1 amortised over ``r1_every``),
  ``optimizer_ema_s`` (gradient clipping, AdamW step, EMA update). ``other_s`` is the step
  minus the parts (Python, logging, loss bookkeeping; negative when the parts' medians exceed
  the step's mean).
- **FLOPs** of one step and of each part by ``torch.utils.flop_counter.FlopCounterMode``
  (matmuls and convolutions, forward and backward).
- **matmul throughput** measured in the same run, at the same thread count: square matmuls
  (1024 and 2048 on a CPU, 4096 and 8192 on a GPU) in fp32 and bf16, best over about a second
  of calls each. ``fraction`` = achieved step TFLOP/s / measured matmul TFLOP/s in the dtype the
  step computes in (bf16 under ``mixed_precision=bf16``, else fp32); the same per part.
- On CUDA also: the card's name, its dense bf16 peak from a table (H100 989 TFLOP/s) and
  ``mfu`` against it, and which scaled-dot-product-attention kernel the tokenizer runs (kernel
  names of one forward under the profiler: flash / memory-efficient / cuDNN / math).

Data: ``--data DIR`` reads a real data set (e.g. ``data/emoji``) through ``TokenizerTask`` and
its text cache (run ``textok embed-text --data DIR`` first); without it, random images and four
captions whose embeddings come from an in-memory ``TextCache`` (the step's cost does not depend
on pixel values or on what the embeddings say).

    .venv/bin/python benchmarks/bench_train.py --data data/emoji                    # CPU presets
    .venv/bin/python benchmarks/bench_train.py --data data/emoji --perceptual-fraction 0.25
    .venv/bin/python benchmarks/bench_train.py --preset textok-b --batch 32 --gan   # on a GPU
    .venv/bin/python benchmarks/bench_train.py --json    # one JSON object per preset, one per line

With ``--json`` stdout holds only the JSON (one object per preset, one line each; so with one
``--preset`` it is exactly one JSON object); the table goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import textok  # noqa: F401  (before torch: its default OMP_WAIT_POLICY=PASSIVE must precede OpenMP's start)
import torch
import torch.nn.functional as F
from common import timed

from textok.training import Trainer, TokenizerTask, cpu_name, load_config
from textok.training.task import unwrap
from textok.training.trainer import _to_device, resolve_mixed_precision, step_rng

REPO = Path(__file__).resolve().parents[1]
PRESET_CONFIGS = {"textok-mini-32": "configs/emoji32_textok.yaml", "textok-mini-64": "configs/emoji64_textok.yaml",
                  "textok-b": "configs/imagenet256_textok_b.yaml"}
GPU_PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0, "L4": 121.0}  # dense
CAPTIONS = ["grinning face; smileys and emotion, face smiling", "red apple; food and drink, food fruit",
            "woman judge: dark skin tone; people and body, person role", "flexed biceps; people and body, body parts"]
PARTS = ("data_s", "tokenizer_fwd_s", "tokenizer_bwd_s", "lpips_s", "discriminator_s", "optimizer_ema_s")


def say(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


# ---- the machine's matmul throughput ------------------------------------------------------------

def matmul_tflops(dtype: torch.dtype, device: torch.device, sizes: tuple[int, ...], seconds: float = 1.0) -> dict:
    """Best TFLOP/s of square ``n x n @ n x n`` matmuls in ``dtype`` over about ``seconds`` of calls each."""
    out = {}
    for n in sizes:
        a = torch.randn(n, n, device=device).to(dtype)
        b = torch.randn(n, n, device=device).to(dtype)
        best = timed(lambda: torch.mm(a, b), warmup=1, reps=3, device=device.type, min_seconds=seconds)
        out[n] = 2 * n**3 / best / 1e12
    return out


# ---- the task -----------------------------------------------------------------------------------

class SyntheticTask(TokenizerTask):
    """Random images with four captions; the text 'lookup' goes through a real in-memory TextCache."""

    def setup(self, device):
        super().setup(device)
        if self.text is not None:
            from textok.data.text_cache import TextCache

            c = self.config.model
            g = torch.Generator().manual_seed(0)
            lengths = [min(c.max_text_tokens, 8 + 4 * i) for i in range(len(CAPTIONS))]
            offsets = torch.tensor([0, *lengths]).cumsum(0)
            self.text.cache = TextCache(CAPTIONS, torch.randn(int(offsets[-1]), c.text_dim, generator=g).half(),
                                        torch.ones(int(offsets[-1]), dtype=torch.bool), offsets, name=c.text_encoder,
                                        max_words=10_000, max_tokens=c.max_text_tokens)

    def train_dataset(self):
        S, n = self.config.model.image_size, 4 * self.config.optim.batch_size
        g = torch.Generator().manual_seed(0)
        return [{"image": torch.rand(3, S, S, generator=g) * 2 - 1, "caption": CAPTIONS[i % 4], "label": -1,
                 "key": str(i)} for i in range(n)]

    def collate(self, items):
        return {"images": torch.stack([it["image"] for it in items]), "captions": [it["caption"] for it in items],
                "labels": torch.full((len(items),), -1), "keys": [it["key"] for it in items]}


def make_config(preset: str, args):
    overrides = [f"optim.batch_size={args.batch}", "optim.grad_accum_steps=1", "schedule.max_steps=1000000",
                 "logging.tensorboard=false", "logging.progress=false", "logging.num_preview=0",
                 f"mixed_precision={args.precision}", f"loss.perceptual_fraction={args.perceptual_fraction}"]
    if args.image_size:
        overrides.append(f"model.image_size={args.image_size}")
    if args.gan:
        overrides += ["loss.discriminator_start=0"]
    else:
        overrides += ["loss.adversarial_weight=0.0"]
    if args.data:
        overrides += [f"data.root={args.data}", "data.use_text_cache=true"]
    else:
        overrides += ["data.root=unused-synthetic", "data.num_workers=0"]
    path = REPO / PRESET_CONFIGS[preset] if preset in PRESET_CONFIGS else None
    if path is not None:
        cfg = load_config(path, overrides)
        if args.gan and cfg.loss.adversarial_weight <= 0:
            cfg = load_config(path, overrides + ["loss.adversarial_weight=0.1"])
        return cfg
    from textok.training import build_config
    from textok.config import apply_overrides

    return build_config(apply_overrides({"model": {"preset": preset}}, overrides))


# ---- timing helpers -----------------------------------------------------------------------------

class Timer:
    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"

    def sync(self):
        if self.cuda:
            torch.cuda.synchronize()

    def median(self, fn, reps: int, warmup: int = 1) -> float:
        for _ in range(warmup):
            fn()
        times = []
        for _ in range(max(1, reps)):
            self.sync()
            t0 = time.perf_counter()
            fn()
            self.sync()
            times.append(time.perf_counter() - t0)
        return statistics.median(times)


class _GlobalOnly:
    """Stands in for FlopCounterMode's module tracker: its hooks break ``autograd.grad`` (R1)."""

    parents = {"Global"}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def count_flops(fn) -> int:
    """FLOPs (matmuls, convolutions, attention; forward and backward) of ``fn()``, in total."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    counter.mod_tracker = _GlobalOnly()
    with counter:
        fn()
    return counter.get_total_flops()


def sdpa_backend(trainer, batch, text) -> str:
    """Which attention kernel one tokenizer forward runs on CUDA (profiler kernel names)."""
    from torch.profiler import ProfilerActivity, profile

    with torch.no_grad(), trainer.acc.autocast(), profile(activities=[ProfilerActivity.CUDA]) as prof:
        trainer.model(batch["images"], text)
        torch.cuda.synchronize()
    names = [e.key.lower() for e in prof.key_averages()]
    found = [label for label, keys in (("flash", ("flash",)), ("memory-efficient", ("efficient", "fmha", "mem_eff")),
                                       ("cudnn", ("cudnn_attn", "cudnn_sdpa", "cudnn"))) if any(any(k in n for k in keys) for n in names)]
    return ", ".join(found) or "math (no fused attention kernel seen)"


# ---- one preset ---------------------------------------------------------------------------------

def bench(preset: str, args, matmul: dict) -> dict:
    cfg = make_config(preset, args)
    task = (TokenizerTask if args.data else SyntheticTask)(cfg)
    trainer = Trainer(task, cfg, tempfile.mkdtemp(prefix="bench_train_"))
    dev = trainer.device
    timer = Timer(dev)
    loader = iter(trainer._loader(task.train_dataset()))
    model, loss = trainer.model, task.loss
    B = cfg.optim.batch_size
    k = max(1, math.ceil(cfg.loss.perceptual_fraction * B))
    mp = resolve_mixed_precision(cfg.mixed_precision)
    say(f"== {preset} {cfg.model.image_size} px, N={cfg.model.num_tokens}, batch {B}, {mp}, "
        f"LPIPS on {k}/{B}, GAN {'on' if args.gan else 'off'}, {'data ' + args.data if args.data else 'synthetic data'}, "
        f"{dev} x{torch.get_num_threads()} threads")

    def full_step():
        trainer.train_step([_to_device(next(loader), dev)])

    for _ in range(args.warmup):
        full_step()

    # the parts, on one fixed batch (the data part reads fresh ones)
    batch = _to_device(next(loader), dev)
    rng = step_rng(cfg.seed, trainer.step, 0, dev)
    text = task.condition(batch["captions"], rng, cfg.data.caption_dropout)
    images = batch["images"]

    def data_part():
        b = _to_device(next(loader), dev)
        task.condition(b["captions"], rng, cfg.data.caption_dropout)

    def tok_fwd():
        with torch.no_grad(), trainer.acc.autocast():
            model(images, text, generator=rng)

    def tok_fwd_bwd():
        with trainer.acc.autocast():
            out = model(images, text, generator=rng)
            l = cfg.loss.l2_weight * F.mse_loss(out.reconstruction.float(), images.float())
            if not out.posterior.deterministic:
                l = l + cfg.loss.kl_weight * out.posterior.kl().float().mean()
        trainer.acc.backward(l)

    with torch.no_grad(), trainer.acc.autocast():
        rec = model(images, text, generator=rng).reconstruction.detach()

    def lpips_part():
        r = rec[:k].clone().requires_grad_(True)
        with trainer.acc.autocast():
            d = loss.lpips(r, images[:k]).mean()
        d.backward()

    def disc_generator_side():
        from textok.losses.adversarial import adversarial_g_loss
        from textok.losses.textok_loss import _frozen

        r = rec.clone().requires_grad_(True)
        with trainer.acc.autocast(), _frozen(loss.discriminator) as disc:
            g = adversarial_g_loss(disc(r), cfg.loss.adversarial_loss)
        g.backward()

    def disc_step(step):
        def run():
            with trainer.acc.autocast():
                d, _ = loss.discriminator_loss(images, rec, step)
            d.backward()
            trainer._clip(trainer.critic_params)
            trainer.critic_opt.step()
            trainer.critic_opt.zero_grad(set_to_none=True)
        return run

    def opt_ema():
        trainer._clip(model.parameters())
        trainer.opt.step()
        trainer.ema.update(model, 0.999)

    reps = max(1, args.steps)
    parts, flops = {}, {}
    parts["data_s"] = timer.median(data_part, reps)
    parts["tokenizer_fwd_s"] = timer.median(tok_fwd, reps)
    fwd_bwd = timer.median(tok_fwd_bwd, reps)  # leaves gradients in the model for the optimiser part
    parts["tokenizer_bwd_s"] = max(0.0, fwd_bwd - parts["tokenizer_fwd_s"])
    flops["tokenizer_fwd_s"] = count_flops(tok_fwd)
    flops["tokenizer_bwd_s"] = count_flops(tok_fwd_bwd) - flops["tokenizer_fwd_s"]
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(args.profile):
                tok_fwd_bwd()
        say(f"-- tokenizer forward + backward (L2 + KL), {args.profile} calls, ops by self time:")
        say(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15, max_name_column_width=48))
        # the MLP activation alone, on the shape it sees in the model: exact (erf) vs tanh-approximate GELU
        shapes = []
        gelu = next(m for m in model.modules() if isinstance(m, torch.nn.GELU))
        handle = gelu.register_forward_hook(lambda m, i, o: shapes.append(tuple(i[0].shape)))
        tok_fwd()
        handle.remove()
        x = torch.randn(shapes[0], device=dev)
        for approximate in ("none", "tanh"):
            sec = timer.median(lambda: F.gelu(x, approximate=approximate), max(5, reps))
            say(f"-- GELU(approximate={approximate!r}) on {list(x.shape)}: {sec * 1e3:.2f} ms")
    if loss.lpips is not None:
        parts["lpips_s"] = timer.median(lpips_part, reps)
        flops["lpips_s"] = count_flops(lpips_part)
    else:
        parts["lpips_s"] = 0.0
    if args.gan and loss.discriminator is not None:
        r1_every = cfg.loss.r1_every
        plain_step = 1 if r1_every > 1 else 0
        g_side = timer.median(disc_generator_side, reps)
        d_plain = timer.median(disc_step(plain_step), reps)
        d_r1 = timer.median(disc_step(0), reps) if cfg.loss.r1_weight > 0 else d_plain
        parts["discriminator_s"] = g_side + d_plain + (d_r1 - d_plain) / r1_every
        flops["discriminator_s"] = (count_flops(disc_generator_side) + count_flops(disc_step(plain_step))
                                    + (count_flops(disc_step(0)) - count_flops(disc_step(plain_step))) / r1_every)
    else:
        parts["discriminator_s"] = 0.0
    parts["optimizer_ema_s"] = timer.median(opt_ema, reps)
    trainer.opt.zero_grad(set_to_none=True)
    for p in model.parameters():
        if p.grad is not None:
            p.grad = None

    # the full step, end to end (what images/s is), and its FLOPs
    step_flops = count_flops(full_step)
    timer.sync()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        full_step()
        timer.sync()
        times.append(time.perf_counter() - t0)
    step_s = sum(times) / len(times)

    dtype = "bf16" if mp == "bf16" else "fp32"
    mm = max(matmul[dtype].values())
    achieved = step_flops / step_s / 1e12
    result = {
        "preset": preset, "image_size": cfg.model.image_size, "num_tokens": cfg.model.num_tokens, "batch": B,
        "precision": mp, "compute_dtype": dtype, "perceptual_fraction": cfg.loss.perceptual_fraction,
        "lpips_images": k if loss.lpips is not None else 0, "gan": bool(args.gan),
        "data": args.data or "synthetic", "device": str(dev), "threads": torch.get_num_threads(),
        "steps": len(times), "warmup": args.warmup,
        "step_s": step_s, "step_min_s": min(times), "images_per_s": B / step_s,
        **parts,
        "other_s": step_s - sum(parts.values()),
        "step_gflop": step_flops / 1e9,
        "step_tflops": achieved,
        "matmul_tflops": mm,
        "matmul_tflops_fp32": max(matmul["fp32"].values()),
        "matmul_tflops_bf16": max(matmul["bf16"].values()),
        "matmul_by_size": {d: {str(n): v for n, v in m.items()} for d, m in matmul.items()},
        "fraction": achieved / mm if mm > 0 else None,
        "parts_gflop": {p: f / 1e9 for p, f in flops.items()},
        "parts_fraction": {p: (f / parts[p] / 1e12) / mm for p, f in flops.items() if parts[p] > 0},
        "tokenizer_params": sum(p.numel() for p in unwrap(model).parameters()),
        "discriminator_params": sum(p.numel() for p in trainer.critic_params),
    }
    if dev.type == "cuda":
        name = torch.cuda.get_device_name()
        peak = next((v for key, v in GPU_PEAK_BF16_TFLOPS.items() if key in name), None)
        result.update({"card": name, "peak_bf16_tflops": peak, "mfu": achieved / peak if peak else None,
                       "flash_sdp_enabled": torch.backends.cuda.flash_sdp_enabled(),
                       "mem_efficient_sdp_enabled": torch.backends.cuda.mem_efficient_sdp_enabled(),
                       "sdpa_kernels": sdpa_backend(trainer, batch, text)})
    return result


def table(rows: list[dict]) -> str:
    head = ("| preset | px | N | batch | dtype | LPIPS imgs | threads | img/s | step ms | data | tok fwd | tok bwd "
            "| LPIPS | disc | opt+EMA | other | GFLOP/step | TFLOP/s | matmul TFLOP/s | fraction |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        ms = lambda key: f"{1e3 * r[key]:.1f}"  # noqa: E731
        lines.append(
            f"| {r['preset']} | {r['image_size']} | {r['num_tokens']} | {r['batch']} | {r['compute_dtype']} | "
            f"{r['lpips_images']} | {r['threads']} | {r['images_per_s']:.2f} | {ms('step_s')} | {ms('data_s')} | "
            f"{ms('tokenizer_fwd_s')} | {ms('tokenizer_bwd_s')} | {ms('lpips_s')} | {ms('discriminator_s')} | "
            f"{ms('optimizer_ema_s')} | {ms('other_s')} | {r['step_gflop']:.1f} | {r['step_tflops']:.4f} | "
            f"{r['matmul_tflops']:.4f} | {100 * r['fraction']:.1f}% |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", action="append", help="TexTok preset (repeat); default: textok-mini-32 and "
                   "textok-mini-64, plus textok-b at 256 px when CUDA is available")
    p.add_argument("--image-size", type=int, default=None, help="override the preset config's image size")
    p.add_argument("--batch", type=int, default=32, help="images per step (default 32)")
    p.add_argument("--steps", type=int, default=10, help="timed steps (and timed calls per part)")
    p.add_argument("--warmup", type=int, default=2, help="untimed full steps first")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--precision", default="auto", choices=["auto", "no", "bf16"], help="mixed_precision")
    p.add_argument("--perceptual-fraction", type=float, default=1.0,
                   help="loss.perceptual_fraction (default 1.0: LPIPS on the whole batch)")
    p.add_argument("--gan", action="store_true", help="adversarial loss on from step 0 (discriminator step timed)")
    p.add_argument("--data", default=None, help="a real data set folder (e.g. data/emoji); default: synthetic")
    p.add_argument("--matmul-sizes", type=int, nargs="+", default=None,
                   help="square matmul sizes of the throughput reference (default 1024 2048 on a CPU, 4096 8192 on a "
                        "GPU; bf16 on a CPU without AMX runs at ~0.1x fp32, so a 2048 bf16 matmul takes seconds)")
    p.add_argument("--matmul-seconds", type=float, default=1.0, help="seconds of calls per matmul size and dtype")
    p.add_argument("--profile", type=int, default=0, metavar="N",
                   help="also print the torch profiler's op table of N tokenizer forward + backward calls (stderr)")
    p.add_argument("--json", action="store_true", help="print one JSON object per preset (one per line) on stdout")
    p.add_argument("--out", default=None, help="also write the results (a JSON list) here")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if args.threads is not None:
        if args.threads < 1:
            p.error("--threads must be >= 1")
        torch.set_num_threads(args.threads)
    gpu = torch.cuda.is_available()
    presets = args.preset or (["textok-mini-32", "textok-mini-64"] + (["textok-b"] if gpu else []))
    device = torch.device("cuda" if gpu else "cpu")
    sizes = tuple(args.matmul_sizes) if args.matmul_sizes else ((4096, 8192) if gpu else (1024, 2048))
    say(f"measuring matmul throughput ({', '.join(map(str, sizes))}; fp32, bf16) on {device} "
        f"x{torch.get_num_threads()} threads ...")
    matmul = {name: matmul_tflops(dt, device, sizes, args.matmul_seconds)
              for name, dt in (("fp32", torch.float32), ("bf16", torch.bfloat16))}
    say("matmul TFLOP/s: " + "; ".join(f"{d} " + ", ".join(f"{n}: {v:.4f}" for n, v in m.items()) for d, m in matmul.items()))
    machine = {"cpu": cpu_name(), "torch": torch.__version__,
               "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY")}
    rows = []
    for preset in presets:
        r = bench(preset, args, matmul)
        r.update(machine)
        rows.append(r)
        if args.json:
            print(json.dumps(r), flush=True)
    (say if args.json else print)(table(rows))
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
