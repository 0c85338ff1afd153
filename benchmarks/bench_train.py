"""Tokenizer training throughput (images/s) and model FLOPs utilisation, GAN on.

One full ``Trainer.train_step`` per iteration: TexTok forward/backward with L2 + LPIPS + KL +
adversarial loss, then the discriminator step with LeCAM (R1 on its lazy schedule), EMA and
gradient clipping, on synthetic 'images' with real captions through the real MiniLM encoder.

FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` on one step (matmuls and
convolutions of everything in the step: tokenizer, LPIPS's VGG, discriminator, forward and
backward). MFU = counted FLOPs x steps/s / peak. Peaks: stated per device below; on a CPU the
peak is cores x clock x FLOP/cycle (AVX-512 FP32: 64; AMX BF16: 1024 per core), with the clock
from /proc/cpuinfo unless --cpu-ghz is given.

    .venv/bin/python benchmarks/bench_train.py                       # CPU: the small presets
    .venv/bin/python benchmarks/bench_train.py --preset textok-b --image-size 256 --batch 32   # GPU
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import torch

from textok.training import Trainer, TokenizerTask, build_config
from textok.training.trainer import resolve_mixed_precision

GPU_PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0}  # dense
CAPTIONS = ["grinning face; smileys and emotion, face smiling", "red apple; food and drink, food fruit",
            "woman judge: dark skin tone; people and body, person role", "flexed biceps; people and body, body parts"]


class SyntheticTask(TokenizerTask):
    """Random images (the step's cost does not depend on pixel values) with real captions."""

    def train_dataset(self):
        S, n = self.config.model.image_size, 4 * self.config.optim.batch_size
        g = torch.Generator().manual_seed(0)
        return [{"image": torch.rand(3, S, S, generator=g) * 2 - 1, "caption": CAPTIONS[i % 4], "label": -1,
                 "key": str(i)} for i in range(n)]

    def collate(self, items):
        return {"images": torch.stack([it["image"] for it in items]), "captions": [it["caption"] for it in items],
                "labels": torch.full((len(items),), -1), "keys": [it["key"] for it in items]}


def cpu_peak_tflops(bf16: bool, ghz: float | None) -> tuple[float, str]:
    if ghz is None:
        mhz = [float(line.split(":")[1]) for line in open("/proc/cpuinfo") if line.startswith("cpu MHz")]
        ghz = max(mhz) / 1000 if mhz else 2.0
    cores = torch.get_num_threads()
    per_cycle = 1024 if bf16 else 64
    return cores * ghz * per_cycle / 1000, f"{cores} cores x {ghz:.2f} GHz x {per_cycle} FLOP/cycle ({'AMX BF16' if bf16 else 'AVX-512 FP32'})"


def bench(preset: str, image_size: int | None, batch: int, steps: int, warmup: int, precision: str, ghz) -> dict:
    from torch.utils.flop_counter import FlopCounterMode

    model = {"preset": preset}
    if image_size:
        model["image_size"] = image_size
    cfg = build_config({
        "model": model,
        "data": {"root": "unused", "use_text_cache": False},
        "loss": {"discriminator_start": 0, "discriminator_channel_base": 2048 if (image_size or 64) <= 64 else 16384,
                 "discriminator_channel_max": 128 if (image_size or 64) <= 64 else 512},
        "optim": {"batch_size": batch},
        "schedule": {"max_steps": 10_000, "warmup_steps": 1},
        "logging": {"tensorboard": False, "progress": False, "num_preview": 0},
        "mixed_precision": precision,
    })
    trainer = Trainer(SyntheticTask(cfg), cfg, tempfile.mkdtemp(prefix="bench_train_"))
    loader = iter(trainer._loader(trainer.task.train_dataset()))
    sync = torch.cuda.synchronize if trainer.device.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        trainer.train_step([{k: (v.to(trainer.device) if torch.is_tensor(v) else v) for k, v in next(loader).items()}])
    batch_ = {k: (v.to(trainer.device) if torch.is_tensor(v) else v) for k, v in next(loader).items()}
    with FlopCounterMode(display=False) as counter:
        trainer.train_step([batch_])
    flops = counter.get_total_flops()
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        trainer.train_step([{k: (v.to(trainer.device) if torch.is_tensor(v) else v) for k, v in next(loader).items()}])
    sync()
    dt = (time.perf_counter() - t0) / steps
    mp = resolve_mixed_precision(precision)
    if trainer.device.type == "cuda":
        name = torch.cuda.get_device_name()
        peak = next((v for k, v in GPU_PEAK_BF16_TFLOPS.items() if k in name), None)
        peak_note = f"{name} dense BF16 {peak} TFLOP/s" if peak else f"{name}: peak unknown"
    else:
        peak, peak_note = cpu_peak_tflops(mp == "bf16", ghz)
    achieved = flops / dt / 1e12
    return {"preset": preset, "image_size": cfg.model.image_size, "batch": batch, "precision": mp,
            "device": str(trainer.device), "threads": torch.get_num_threads(), "step_s": round(dt, 4),
            "images_per_s": round(batch / dt, 2), "gflop_per_step": round(flops / 1e9, 1),
            "achieved_tflops": round(achieved, 4), "peak_tflops": peak, "peak": peak_note,
            "mfu": round(achieved / peak, 4) if peak else None,
            "tokenizer_params": sum(p.numel() for p in trainer.ema.model.parameters()),
            "discriminator_params": sum(p.numel() for p in trainer.critic_params)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", action="append", help="TexTok preset(s); default: the small CPU presets (or textok-b on a GPU)")
    p.add_argument("--image-size", type=int, default=None)
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--precision", default="auto", choices=["auto", "no", "bf16"])
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--cpu-ghz", type=float, default=None)
    p.add_argument("--json", default=None, help="also write the results here")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    gpu = torch.cuda.is_available()
    presets = args.preset or (["textok-b"] if gpu else ["textok-mini-32", "textok-mini-64"])
    size = args.image_size or (256 if gpu and not args.preset else None)
    batch = args.batch or (32 if gpu else 16)
    rows = [bench(pr, size, batch, args.steps, args.warmup, args.precision, args.cpu_ghz) for pr in presets]
    print("| preset | px | batch | precision | device | images/s | GFLOP/step | TFLOP/s | MFU | peak |")
    print("|---|---:|---:|---|---|---:|---:|---:|---:|---|")
    for r in rows:
        mfu = f"{100 * r['mfu']:.1f}%" if r["mfu"] is not None else "n/a"
        print(f"| {r['preset']} | {r['image_size']} | {r['batch']} | {r['precision']} | {r['device']} x{r['threads']} | "
              f"{r['images_per_s']} | {r['gflop_per_step']} | {r['achieved_tflops']} | {mfu} | {r['peak']} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
