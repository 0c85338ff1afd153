"""What choosing the detokenizer's caption by cycle error costs a class-conditional sample.

    python benchmarks/bench_caption_choice.py                 # batch 32, the class recipe's 50 DDIM steps
    python benchmarks/bench_caption_choice.py --batch 8 --threads 2

The class-conditional pipeline decodes each sample with a caption of its class: drawn at random
(``caption_choice="random"``, the default) or, of up to 16 captions of the class's pool, the one with
the lowest ``TexTok.cycle_error`` (``"cycle"``: one decode + one encode of the tokenizer per candidate).
This times one batch both ways, side by side (alternating, best of the calls), with the shipped N = 4
TexTok and a randomly initialised DiT of ``configs/dit_emoji32_class.yaml`` (speed does not depend on
the weights), the pool built from the emoji data set's held-out captions per class and embedded from
its text cache (``textok data fetch emoji`` + ``textok embed-text``, as ``make demo`` does). Prints one
Markdown row; the figures go to docs/results/generation.md with the machine and the load.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import torch
from common import timed  # benchmarks/common.py (a script's own folder is on sys.path)

REPO = Path(__file__).resolve().parents[1]


def heldout_pool(data: Path, classes: list[str]) -> dict[int, list[str]]:
    """label -> the distinct captions of the val / val_unseen images of that class (what the study's pool holds)."""
    rows = [json.loads(line) for line in (data / "captions.jsonl").read_text().splitlines()]
    index = {c: i for i, c in enumerate(classes)}
    pool: dict[int, list[str]] = {}
    for r in rows:
        if r.get("split") in ("val", "val_unseen") and r.get("class") in index:
            caps = pool.setdefault(index[r["class"]], [])
            if r["caption"] not in caps:
                caps.append(r["caption"])
    return pool


def main(argv: list[str] | None = None) -> int:
    from textok import DiT, TexTok
    from textok.generation import GenerationConfig, Pipeline
    from textok.training.dit_task import load_dit_config
    from textok.training.trainer import cpu_name

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=REPO / "data" / "emoji")
    p.add_argument("--tokenizer", type=Path, default=REPO / "src" / "textok" / "pretrained" / "emoji32-textok-n4")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--reps", type=int, default=3)
    args = p.parse_args(argv)
    if not (args.data / "captions.jsonl").is_file():
        sys.exit(f"{args.data}: no emoji data; run `textok data fetch emoji --root {args.data}` and "
                 f"`textok embed-text --data {args.data}` first")
    torch.set_num_threads(args.threads)
    tok = TexTok.from_pretrained(args.tokenizer).eval()
    cfg = load_dit_config(REPO / "configs" / "dit_emoji32_class.yaml",
                          [f"model.num_tokens={tok.config.num_tokens}", f"model.token_dim={tok.config.token_dim}"])
    torch.manual_seed(0)
    dit = DiT(cfg.model).eval()
    classes = json.loads((args.data / "manifest.json").read_text())["classes"]
    pool = heldout_pool(args.data, classes)
    d = tok.config.token_dim
    config = GenerationConfig(tokenizer=str(args.tokenizer), latent_mean=[0.0] * d, latent_std=[1.0] * d,
                              diffusion=cfg.diffusion, classes=classes)
    pipe = Pipeline(dit, tok, config, pool, text_data=args.data)
    labels = [i % len(classes) for i in range(args.batch)]
    sizes = [len(pool.get(y, [])) for y in labels]
    pipe(labels=labels[:2], caption_choice="cycle")  # loads the text cache once
    seconds = {}
    for _ in range(args.reps):  # alternating, so that both see the same load
        for choice in ("random", "cycle"):
            t = timed(lambda: pipe(labels=labels, caption_choice=choice), warmup=0, reps=1, device="cpu", min_seconds=0)
            seconds[choice] = min(seconds.get(choice, t), t)
    steps = cfg.diffusion.steps
    print(f"| {cpu_name() or platform.processor()} | {args.threads} | {args.batch} | {cfg.diffusion.sampler} {steps} "
          f"| {sum(min(s, 16) for s in sizes) / len(sizes):.1f} | {seconds['random']:.2f} | {seconds['cycle']:.2f} "
          f"| {seconds['cycle'] / seconds['random']:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
