"""Milliseconds of one optimiser step on a recipe's TexTok: Muon's part and AdamW's part (each of torch's
implementations), side by side in the same processes.

    python benchmarks/bench_optimizer.py --recipe configs/scenes32_speedrun.yaml --processes 2 --threads 1 --json

The optimiser is the one ``textok.training.build_optimizer`` builds for the recipe (``optim.optimizer=muon``:
Muon for the matrices of ``optim.muon_scope``, AdamW for the rest). Gradients are random (seed 0, the same on
every process, as data parallelism leaves them after its all-reduce): a step's cost does not depend on their
values. Each variant: ``--warmup`` steps, then the median over ``--steps`` steps, each started together on every
process (a barrier outside the timing). Variants are interleaved for ``--rounds`` rounds; the minimum over rounds
is reported.
``--processes P`` runs P gloo processes on this machine (as ``speedrun_scenes.py --processes``).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import statistics
import sys
import time

import textok  # noqa: F401  (before torch)
import torch
from speedrun_scenes import git_commit, launch

from textok.models import TexTok
from textok.training import cpu_name, load_config
from textok.training.optim import Muon, _adamw, build_optimizer

IMPLEMENTATIONS = ("for-loop", "foreach", "fused")


def _sync(world: int) -> None:
    if world > 1:
        torch.distributed.barrier()


def median_ms(step, world: int, warmup: int, steps: int) -> float:
    for _ in range(warmup):
        _sync(world)
        step()
    times = []
    for _ in range(steps):
        _sync(world)
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("overrides", nargs="*", help="dotted config overrides")
    p.add_argument("--recipe", default="configs/scenes32_speedrun.yaml")
    p.add_argument("--processes", type=int, default=1)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if args.processes > 1 and "WORLD_SIZE" not in os.environ:
        return launch(args.processes, args.threads or 1, sys.argv[1:] if argv is None else list(argv), __file__)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    world, rank = 1, 0
    if "WORLD_SIZE" in os.environ:
        torch.distributed.init_process_group("gloo")
        world, rank = torch.distributed.get_world_size(), torch.distributed.get_rank()
    cfg = load_config(args.recipe, list(args.overrides) + ["optim.optimizer=muon", "model.num_tokens=1"])
    model = TexTok(cfg.model)
    opt = build_optimizer(model, cfg.optim)
    muon: Muon = opt.optimizers["muon"]
    rest = [q for g in opt.optimizers["adamw"].param_groups for q in g["params"]]
    torch.manual_seed(0)
    for q in model.parameters():
        q.grad = torch.randn_like(q) * 1e-3

    variants = {"muon": muon.step}
    for impl in IMPLEMENTATIONS:
        variants[f"adamw_{impl}"] = _adamw(rest, cfg.optim.lr, dataclasses.replace(cfg.optim, implementation=impl)).step
    results: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, step in variants.items():
            results[name].append(median_ms(step, world, args.warmup, args.steps))
    if rank == 0:
        out = {"cpu": cpu_name(), "threads": torch.get_num_threads(), "processes": world, "commit": git_commit(),
               "date": str(datetime.date.today()), "recipe": args.recipe, "overrides": list(args.overrides),
               "muon_matrices": sum(len(g["params"]) for g in muon.param_groups), "adamw_tensors": len(rest),
               "ms": {name: round(min(v), 3) for name, v in results.items()}}
        if args.json:
            print(json.dumps(out))
        else:
            for name, ms in out["ms"].items():
                print(f"{name:16s} {ms:8.3f} ms")
    if world > 1:
        torch.distributed.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
