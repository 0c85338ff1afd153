"""The scenes speedrun: training seconds until a tokenizer reaches a validation PSNR.

Frozen data: ``textok data fetch scenes --count 25000 --size 32`` (seed 0; fetched into ``--data``
when missing) and its MiniLM caption cache at 40 tokens (built when missing). Frozen scoring:
PSNR (uint8, ``textok.metrics.psnr``) of the EMA model (what training saves) on 300 evenly spaced
``val`` scenes, every ``--check-every`` steps; ``val_compositional`` (held-out colour-shape pairs)
is scored on the same 300 positions at the end and reported.

The clock counts training only: the step's data and ``Trainer.train_step``. Setup (data in
memory, the text cache, model building), evaluations and the FLOP count are timed separately
and printed. A run stops when the target is met, at ``--max-seconds`` of training, or at the
recipe's ``schedule.max_steps``.

    python benchmarks/speedrun_scenes.py                                # record 0's recipe, TexTok N = 1, 1 seed
    python benchmarks/speedrun_scenes.py --recipe configs/scenes32_fast.yaml --seeds 3 --json
    python benchmarks/speedrun_scenes.py --arm baseline --num-tokens 8 --max-seconds 1800
    python benchmarks/speedrun_scenes.py --recipe configs/scenes32_fast.yaml optim.lr=2e-3   # dotted overrides
    python benchmarks/speedrun_scenes.py --recipe configs/scenes32_speedrun.yaml --processes 2 --threads 1

``--processes P`` trains data-parallel (P gloo processes on this machine, torchrun's environment, the
global batch unchanged and split between them, gradients averaged: the same steps as one process);
rank 0 scores and reports, and the other ranks wait for its verdict outside the clock.

Prints one JSON object per seed (with ``--json`` stdout holds only JSON, one object per line:
the seeds, then the summary) and a summary: seconds and steps to target for every seed (or the
best PSNR when a seed missed it), images seen, the step's FLOPs, achieved TFLOP/s and its
fraction of the same-run matmul throughput in fp32 and bf16, CPU model, threads and commit.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import socket
import tempfile
import time
from pathlib import Path

import textok  # noqa: F401  (before torch: its OMP_WAIT_POLICY default must precede OpenMP's start)
import torch
from bench_train import count_flops, matmul_tflops

from textok.data import build_text_cache, fetch, load_text_cache, open_dataset
from textok.metrics import iterate_batches, psnr
from textok.tokenizer import CaptionedTokenizer
from textok.training import Trainer, TokenizerTask, baseline_of, cpu_name, load_config

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "configs" / "scenes32_textok.yaml"  # record 0: the scenes study's recipe
DATA = {"count": 25000, "size": 32, "seed": 0}
MAX_TEXT_TOKENS = 40
EVAL_NUM = 300


def say(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def prepare(root: Path) -> dict:
    """Fetch the frozen data and its caption cache where missing; the seconds each took."""
    out = {}
    t = time.perf_counter()
    if not (root / "captions.jsonl").is_file():
        fetch("scenes", root, **DATA)
        out["fetch_seconds"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    cache = load_text_cache(root, "minilm")
    if cache is None or cache.max_tokens != MAX_TEXT_TOKENS:
        build_text_cache(root, "minilm", max_tokens=MAX_TEXT_TOKENS, progress=False)
        out["text_cache_seconds"] = round(time.perf_counter() - t, 1)
    return out


class Scorer:
    """PSNR of a TexTok's reconstructions of ``EVAL_NUM`` evenly spaced scenes of a split."""

    def __init__(self, root: Path, split: str, num: int = EVAL_NUM):
        ds = open_dataset(root, split, image_size=DATA["size"])
        self.batches = list(iterate_batches(ds, num, 100))

    @torch.no_grad()
    def __call__(self, model, text) -> float:
        tok = CaptionedTokenizer(model, text)
        scores = [psnr(b["images"], tok.reconstruct(b["images"], b["captions"])) for b in self.batches]
        return float(torch.cat(scores).mean())


def shared(values: tuple[float, ...], trainer) -> tuple[float, ...]:
    """Rank 0's ``values`` on every rank (one process: unchanged)."""
    if trainer.world == 1:
        return values
    t = torch.tensor(values, dtype=torch.float64)
    torch.distributed.broadcast(t, src=0)
    return tuple(t.tolist())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(processes: int, threads: int, argv: list[str], script: str = __file__) -> int:
    """Run ``script`` (this one by default) as ``processes`` gloo ranks on this machine (torchrun's environment
    variables, ``threads`` each); rank 0's stdout is the run's, the others' is dropped. The first rank to fail
    stops the rest."""
    port = free_port()
    procs = []
    for rank in range(processes):
        env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "WORLD_SIZE": str(processes),
               "RANK": str(rank), "LOCAL_RANK": str(rank), "LOCAL_WORLD_SIZE": str(processes),
               "OMP_NUM_THREADS": str(threads)}
        procs.append(subprocess.Popen([sys.executable, script, *argv], env=env,
                                      stdout=None if rank == 0 else subprocess.DEVNULL))
    code = 0
    while procs:
        for p in list(procs):
            rc = p.poll()
            if rc is None:
                continue
            procs.remove(p)
            if rc != 0 and code == 0:
                code = rc
                say(f"speedrun: a rank exited with {rc}; stopping the others")
                for other in procs:
                    other.terminate()
        time.sleep(0.2)
    return code


def build(args, seed: int):
    overrides = list(args.overrides) + [
        f"model.num_tokens={args.num_tokens}", f"seed={seed}", f"data.root={args.data}", "data.use_text_cache=true",
        "logging.tensorboard=false", "logging.progress=false", "logging.num_preview=0"]
    cfg = load_config(args.recipe, overrides)
    return baseline_of(cfg) if args.arm == "baseline" else cfg


def run_seed(args, seed: int, scorers: dict) -> dict:
    cfg = build(args, seed)
    t = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(TokenizerTask(cfg), cfg, out)
        dataset = trainer.task.train_dataset()
        loader = iter(trainer._loader(dataset))
        setup = time.perf_counter() - t
        clock, eval_seconds, step, curve = 0.0, 0.0, 0, []
        reached, best = None, -math.inf
        max_steps = cfg.schedule.max_steps
        while step < max_steps:
            t0 = time.perf_counter()
            batch = next(loader)
            trainer.train_step([batch])
            clock += time.perf_counter() - t0
            step += 1
            due = step % args.check_every == 0 or step == max_steps
            if not due and (trainer.world == 1 or step % 10 == 0):  # ranks' clocks differ: rank 0's decides
                due = shared((clock,), trainer)[0] >= args.max_seconds
            if due:
                t1 = time.perf_counter()
                value = scorers["val"](trainer.ema.model, trainer.task.text) if scorers else 0.0
                value, stop_clock = shared((value, clock), trainer)  # every rank stops where rank 0 does
                clock = stop_clock  # rank 0's: the clock every rank reports and stops by
                eval_seconds += time.perf_counter() - t1
                curve.append([step, round(clock, 2), round(value, 3)])
                best = max(best, value)
                if not args.json:
                    say(f"  seed {seed} step {step} {clock:.1f} s val PSNR {value:.2f} dB")
                if value >= args.target_psnr:
                    reached = (step, clock)
                    break
                if clock >= args.max_seconds:
                    break
        t1 = time.perf_counter()
        compositional = scorers["val_compositional"](trainer.ema.model, trainer.task.text) if scorers else 0.0
        eval_seconds += time.perf_counter() - t1
        # one more step, after the clock stopped; per process: the achieved rate below counts every process's
        flops = count_flops(lambda: trainer.train_step([next(loader)]))
        world = trainer.world
        trainer.release()
    return {
        "seed": seed, "reached": reached is not None, "target_psnr": args.target_psnr,
        "seconds": round(reached[1], 2) if reached else None, "steps": reached[0] if reached else None,
        "seconds_run": round(clock, 2), "steps_run": step, "images_seen": step * cfg.optim.batch_size,
        "best_psnr": round(best, 3), "final_psnr_val": curve[-1][2], "final_psnr_val_compositional": round(compositional, 3),
        "seconds_per_step": round(clock / max(step, 1), 4), "step_flops": flops,
        "tflops": round(flops * world * step / max(clock, 1e-9) / 1e12, 4), "processes": world,
        "setup_seconds": round(setup, 1), "eval_seconds": round(eval_seconds, 1),
        "mixed_precision": trainer.acc.mixed_precision, "curve": curve,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("overrides", nargs="*", help="dotted config overrides (optim.lr=2e-3 ...)")
    p.add_argument("--arm", choices=("textok", "baseline"), default="textok")
    p.add_argument("--num-tokens", type=int, default=1)
    p.add_argument("--target-psnr", type=float, default=27.0)
    p.add_argument("--max-seconds", type=float, default=3600.0, help="stop a seed after this much training")
    p.add_argument("--seeds", type=int, default=1, help="seeds 0..K-1")
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--recipe", default=str(RECIPE), help="a training config (YAML)")
    p.add_argument("--data", default="data/scenes25k")
    p.add_argument("--check-every", type=int, default=100, help="steps between evaluations")
    p.add_argument("--name", default=None, help="a name for the record (printed in the summary)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: all cores); a lever: at these widths one thread can beat two")
    p.add_argument("--processes", type=int, default=1,
                   help="data-parallel processes on this machine (gloo; the global batch is split between them)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if args.processes < 1:
        p.error("--processes must be >= 1")
    if args.processes > 1 and "WORLD_SIZE" not in os.environ:
        return launch(args.processes, args.threads or max(1, (os.cpu_count() or 1) // args.processes),
                      sys.argv[1:] if argv is None else list(argv))
    rank = int(os.environ.get("RANK", "0"))
    if args.threads is not None:
        if args.threads < 1:
            p.error("--threads must be >= 1")
        torch.set_num_threads(args.threads)
    for name in ("num_tokens", "seeds", "check_every"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.max_seconds <= 0:
        p.error("--max-seconds must be positive")
    root = Path(args.data)
    prep = prepare(root) if rank == 0 else {}
    if args.processes > 1:  # the other ranks wait for rank 0's data and caption cache
        from accelerate import PartialState  # the process group the Trainer's Accelerator then uses

        PartialState(cpu=True).wait_for_everyone()
    if prep and not args.json:
        say(f"prepared {root}: {prep}")
    scorers = {s: Scorer(root, s) for s in ("val", "val_compositional")} if rank == 0 else {}
    runs = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        r = run_seed(args, seed, scorers)
        runs.append(r)
        if rank != 0:
            continue
        if args.json:
            print(json.dumps(r), flush=True)
        else:
            say(json.dumps({k: v for k, v in r.items() if k != "curve"}))
    if rank != 0:
        return 0
    threads = torch.get_num_threads()
    # the peak of every process's cores: one process's, times the processes (each ran on its own threads)
    matmul = {d: args.processes * max(matmul_tflops(dt, torch.device("cpu"), (512, 1024)).values())
              for d, dt in (("fp32", torch.float32), ("bf16", torch.bfloat16))}
    tflops = statistics.median(r["tflops"] for r in runs)
    done = [r for r in runs if r["reached"]]
    summary = {
        "summary": True, "name": args.name, "commit": git_commit(), "cpu": cpu_name(), "threads": threads,
        "processes": args.processes,
        "recipe": str(Path(args.recipe).resolve().relative_to(REPO)) if Path(args.recipe).resolve().is_relative_to(REPO)
        else args.recipe, "overrides": args.overrides, "arm": args.arm, "num_tokens": args.num_tokens,
        "target_psnr": args.target_psnr, "seeds_reached": f"{len(done)}/{len(runs)}",
        "seconds": [r["seconds"] for r in runs], "steps": [r["steps"] for r in runs],
        "median_seconds": statistics.median(r["seconds"] for r in done) if len(done) == len(runs) else None,
        "best_psnr": [r["best_psnr"] for r in runs], "images_seen": [r["images_seen"] for r in runs],
        "tflops": tflops, "matmul_tflops": {k: round(v, 4) for k, v in matmul.items()},
        "matmul_fraction": {k: round(tflops / v, 4) for k, v in matmul.items()},
        "mixed_precision": runs[0]["mixed_precision"], "date": time.strftime("%Y-%m-%d"), **prep,
    }
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
