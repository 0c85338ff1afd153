"""Pilot: how fast does a cheaper recipe train, and how good is it at equal steps?

Trains one study run (``configs/emoji32_textok.yaml`` + overrides, default TexTok N = 2, seed 0)
in constant-lr stages and after each stage prints the EMA model's val PSNR (every image of the
split, uint8-rounded, the study's protocol without the Inception and LPIPS passes, so a stage
costs seconds) and the measured seconds per step. Used to choose the reproduction study's
model size: compare the curve with the study's own run at equal steps and equal core-seconds.

    python -m studies.emoji32.recipe_pilot --name patch8 --stages 1000 2000 4000 -- model.patch_size=8
    python -m studies.emoji32.recipe_pilot --name w64 -- model.width=64 model.heads=2

Writes ``docs/results/reproduction/pilots/<name>.json`` (``--results``; one record per stage; the
reproduction report's "Choice of the recipe" table reads it); the run itself lives in
``<work>/pilots/<name>``; rerunning resumes.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "configs" / "emoji32_textok.yaml"


def val_psnr(model_dir: Path, data: str, split: str = "val") -> tuple[float, int, int]:
    """Mean PSNR (dB) of the uint8 reconstructions of every image of ``split``, the image count and the
    model's parameter count."""
    from textok.inference import info
    from textok.metrics import evaluate_tokenizer

    # the folder, not a loaded model: evaluate_tokenizer then embeds the captions with the data's text cache
    r = evaluate_tokenizer(str(model_dir), data, split=split, batch_size=64, rfid=False, lpips=False, grid_images=0,
                           progress=False)["results"][0]
    return r["psnr"], r["num"], info(model_dir)["parameters"]["total"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", required=True)
    p.add_argument("--arm", choices=("textok", "baseline"), default="textok")
    p.add_argument("--num-tokens", type=int, default=2)
    p.add_argument("--stages", type=int, nargs="+", default=[1000, 2000, 4000])
    p.add_argument("--work", default=os.environ.get("TEXTOK_STUDY", str(Path.home() / "textok-study")),
                   help="the study's work folder (the pilot trains in <work>/pilots/<name>)")
    p.add_argument("--data", default=str(REPO / "data" / "emoji"))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--results", default=str(REPO / "docs" / "results" / "reproduction" / "pilots"))
    p.add_argument("overrides", nargs="*", help="dotted config overrides (after --)")
    args = p.parse_args()

    from textok.io import write_json_atomic
    from textok.training import TokenizerTask, Trainer, cpu_name, load_config
    from textok.training.checkpoint import latest_checkpoint

    torch.set_num_threads(args.threads)
    out = Path(args.work) / "pilots" / args.name
    log = Path(args.results) / f"{args.name}.json"
    records = json.loads(log.read_text())["records"] if log.is_file() else []
    base = [f"model.num_tokens={args.num_tokens}", "seed=0", f"data.root={args.data}", "logging.progress=false"]
    if args.arm == "baseline":
        base += ["model.text_in=none", "data.caption_dropout=0.0"]
    for steps in args.stages:
        if any(r["steps"] == steps for r in records):
            continue
        cfg = load_config(CONFIG, base + list(args.overrides) + [f"schedule.max_steps={steps}"])
        before = latest_checkpoint(out / "checkpoints")
        start = 0 if before is None else int(before.name.split("_")[-1])
        t0 = time.perf_counter()
        Trainer(TokenizerTask(cfg), cfg, out, resume=before is not None).train()
        seconds = time.perf_counter() - t0
        value, n, params = val_psnr(out / "model", args.data)
        records.append({"steps": steps, "val_psnr": value, "num_images": n, "seconds_per_step": seconds / (steps - start),
                        "params": params, "overrides": list(args.overrides), "arm": args.arm,
                        "num_tokens": args.num_tokens, "threads": args.threads, "cpu": cpu_name(),
                        "date": time.strftime("%Y-%m-%d %H:%M")})
        write_json_atomic(log, {"name": args.name, "records": records})
        print(f"[pilot {args.name}] {steps} steps: val PSNR {value:.2f} dB ({n} images), "
              f"{seconds / (steps - start):.3f} s/step", flush=True)


if __name__ == "__main__":
    main()
