"""Seconds per training step of the scenes recipe with each speed lever on its own, side by side in
one process (the speedrun's ablation of what a lever costs or saves per step; its effect on steps
to target is measured by ``speedrun_scenes.py``).

    python benchmarks/bench_levers.py                       # every lever against record 0's recipe
    python benchmarks/bench_levers.py --levers muon bf16 --steps 50 --json
    python benchmarks/bench_levers.py --recipe configs/scenes32_speedrun.yaml --threads 1 --levers none relu2 \
        adamw_fused muon_ns4 --json optim.batch_size=16          # one speedrun process's share of the batch

Each variant: the recipe (``--recipe``, default the study's) plus the lever's overrides, a fresh
Trainer, ``--warmup`` steps, then the median over ``--steps`` timed steps of data + ``train_step``
(the same quantity the speedrun's clock sums). Variants run in the order given, ``--rounds``
times interleaved, so a neighbour's load hits them alike; the minimum over rounds is reported.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time

import textok  # noqa: F401  (before torch)
import torch
from speedrun_scenes import RECIPE, git_commit, prepare

from textok.training import Trainer, TokenizerTask, cpu_name, load_config

LEVERS = {
    "none": [],
    "in_memory": ["data.in_memory=true"],
    "group_by_length": ["data.group_by_length=16"],
    "muon": ["optim.optimizer=muon"],
    "deterministic": ["model.latent=deterministic"],
    "adamw_foreach": ["optim.implementation=foreach"],
    "adamw_fused": ["optim.implementation=fused"],
    "adamw_for_loop": ["optim.implementation=for-loop"],
    "bf16": ["mixed_precision=bf16"],
    "compile": ["compile=true"],
    "batch16": ["optim.batch_size=16"],
    "batch64": ["optim.batch_size=64"],
    "one_thread": [],  # torch.set_num_threads(1) for this variant (THREADS)
    "exact_gelu": ["model.mlp_act=gelu"],
    "relu2": ["model.mlp_act=relu2"],
    "muon_ns4": ["optim.muon_ns_steps=4"],
    "text_decoder": ["model.text_in=decoder"],  # the caption in the detokenizer only (the paper's ablation)
    "cross_attention": ["model.text_conditioning=cross-attention"],
    "depth2": ["model.depth=2"],
    # the last block computing every position's output (the default computes only the outputs read: the same model)
    "no_prune": ["model.prune_last_block=false"],
    "polar_express": ["optim.muon_ns=polar_express"],  # Polar Express's quintic per Newton-Schulz iteration
    "polar_express3": ["optim.muon_ns=polar_express", "optim.muon_ns_steps=3"],
}
THREADS = {"one_thread": 1}  # levers that set the thread count instead of the config (default: all cores)


def seconds_per_step(recipe: str, overrides: list[str], data: str, warmup: int, steps: int,
                     threads: int | None = None) -> float:
    all_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _seconds_per_step(recipe, overrides, data, warmup, steps)
    finally:
        torch.set_num_threads(all_threads)


def _seconds_per_step(recipe: str, overrides: list[str], data: str, warmup: int, steps: int) -> float:
    cfg = load_config(recipe, overrides + [f"data.root={data}", "model.num_tokens=1", "logging.tensorboard=false",
                                           "logging.progress=false", "logging.num_preview=0"])
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(TokenizerTask(cfg), cfg, out)
        loader = iter(trainer._loader(trainer.task.train_dataset()))
        times = []
        for i in range(warmup + steps):
            t = time.perf_counter()
            trainer.train_step([next(loader)])
            if i >= warmup:
                times.append(time.perf_counter() - t)
        trainer.release()
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("overrides", nargs="*", help="dotted overrides applied to every variant (optim.batch_size=16 ...)")
    p.add_argument("--levers", nargs="+", default=list(LEVERS), choices=list(LEVERS))
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    p.add_argument("--recipe", default=str(RECIPE))
    p.add_argument("--data", default="data/scenes25k")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if min(args.warmup + 1, args.steps, args.rounds) < 1:
        p.error("--steps and --rounds must be >= 1, --warmup >= 0")
    from pathlib import Path

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    prepare(Path(args.data))
    best: dict[str, float] = {}
    for _ in range(args.rounds):
        for name in args.levers:
            s = seconds_per_step(args.recipe, list(args.overrides) + LEVERS[name], args.data, args.warmup, args.steps,
                                 THREADS.get(name))
            best[name] = min(best.get(name, float("inf")), s)
    base = best.get("none")
    rows = [{"lever": k, "overrides": LEVERS[k] or ([f"threads={THREADS[k]}"] if k in THREADS else []),
             "seconds_per_step": round(v, 4),
             "vs_none": round(v / base, 3) if base else None} for k, v in best.items()]
    meta = {"cpu": cpu_name(), "threads": torch.get_num_threads(), "commit": git_commit(), "recipe": args.recipe,
            "overrides": list(args.overrides),
            "steps": args.steps, "warmup": args.warmup, "rounds": args.rounds, "date": time.strftime("%Y-%m-%d")}
    if args.json:
        print(json.dumps({**meta, "rows": rows}))
    else:
        print(f"# {meta}")
        print("| lever | overrides | s/step | vs none |\n|---|---|---|---|")
        for r in rows:
            print(f"| {r['lever']} | {' '.join(r['overrides']) or '-'} | {r['seconds_per_step']:.4f} | {r['vs_none']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
