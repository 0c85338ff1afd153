"""Training throughput on a shared CPU: images/s idle and beside one busy single-thread process.

For each configuration (thread count x OpenMP wait policy; the policy must be set before torch
loads, so every measurement runs in a fresh child process) this script:

1. times ``--steps`` full ``Trainer.train_step`` calls (after ``--warmup``) on an idle machine;
2. starts one competing process (a single-thread fp32 matmul loop, or a pure-Python spin with
   ``--competitor spin``) that stops by itself after ``--competitor-seconds`` and is stopped by
   this script as soon as the measurement ends;
3. times the same steps again beside it;

and prints images/s idle, images/s shared and their ratio (shared / idle).

    .venv/bin/python benchmarks/bench_sharing.py --data data/emoji
    .venv/bin/python benchmarks/bench_sharing.py --preset textok-mini-32 --steps 10 --json

Default configurations: all cores with passive OpenMP waiting (textok's default), all cores
with spinning waits (``OMP_WAIT_POLICY=ACTIVE``), and one thread. Run it on a machine with no
other load: the "idle" numbers assume the cores are free.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

COMPETITORS = {
    # one thread of dense fp32 matmuls (what another training job's thread looks like)
    "matmul": ("import os, time\nos.environ['OMP_NUM_THREADS'] = '1'\nimport torch\ntorch.set_num_threads(1)\n"
               "a = torch.randn(512, 512)\nend = time.monotonic() + {seconds}\n"
               "while time.monotonic() < end:\n    a = torch.mm(a, a).tanh_()\n"),
    # one pure-Python spinning thread
    "spin": "import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end:\n    pass\n",
}


def worker(args) -> None:
    """Child mode: time full training steps in this process; print one JSON line."""
    # a script's own folder (benchmarks/) is on sys.path; bench_train imports textok before torch
    from bench_train import SyntheticTask, make_config

    import tempfile

    import torch

    from textok.training import Trainer, TokenizerTask
    from textok.training.trainer import _to_device

    if args.threads:
        torch.set_num_threads(args.threads)
    ns = argparse.Namespace(batch=args.batch, precision=args.precision, perceptual_fraction=args.perceptual_fraction,
                            image_size=None, gan=False, data=args.data)
    cfg = make_config(args.preset, ns)
    task = (TokenizerTask if args.data else SyntheticTask)(cfg)
    trainer = Trainer(task, cfg, tempfile.mkdtemp(prefix="bench_sharing_"))
    loader = iter(trainer._loader(task.train_dataset()))

    def step():
        trainer.train_step([_to_device(next(loader), trainer.device)])

    for _ in range(args.warmup):
        step()
    print("READY", flush=True)  # the parent may start the competitor now
    sys.stdin.readline()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step()
    dt = (time.perf_counter() - t0) / args.steps
    print(json.dumps({"step_s": dt, "images_per_s": cfg.optim.batch_size / dt, "threads": torch.get_num_threads(),
                      "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY")}), flush=True)


def measure(args, threads: int | None, policy: str, competitor: str | None) -> dict:
    env = dict(os.environ, OMP_WAIT_POLICY=policy, TOKENIZERS_PARALLELISM="false")
    env.pop("OMP_NUM_THREADS", None)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--preset", args.preset, "--batch", str(args.batch),
           "--steps", str(args.steps), "--warmup", str(args.warmup), "--precision", args.precision,
           "--perceptual-fraction", str(args.perceptual_fraction)]
    if threads:
        cmd += ["--threads", str(threads)]
    if args.data:
        cmd += ["--data", args.data]
    child = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    rival = None
    try:
        for line in child.stdout:
            if line.strip() == "READY":
                break
        else:
            raise RuntimeError(f"the worker exited before it was ready (exit code {child.wait()})")
        if competitor:
            code = COMPETITORS[competitor].format(seconds=args.competitor_seconds)
            rival = subprocess.Popen([sys.executable, "-c", code], env=dict(os.environ, OMP_NUM_THREADS="1"))
            time.sleep(1.0)  # let it start (torch import) before the timed steps
        child.stdin.write("go\n")
        child.stdin.flush()
        result = None
        for line in child.stdout:
            if line.startswith("{"):
                result = json.loads(line)
        if child.wait() != 0 or result is None:
            raise RuntimeError(f"the worker failed (exit code {child.returncode})")
        if rival is not None and rival.poll() is not None:
            result["warning"] = "the competitor ended before the measurement: raise --competitor-seconds"
        return result
    finally:
        if rival is not None and rival.poll() is None:
            rival.terminate()  # the process this script started, by its handle
            rival.wait(timeout=10)
        if child.poll() is None:
            child.kill()
            child.wait()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="textok-mini-32")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--precision", default="auto", choices=["auto", "no", "bf16"])
    p.add_argument("--perceptual-fraction", type=float, default=1.0)
    p.add_argument("--data", default=None, help="a real data set folder (default: synthetic images)")
    p.add_argument("--threads", type=int, default=None, help="(worker) torch threads")
    p.add_argument("--configs", default="all:PASSIVE,all:ACTIVE,1:PASSIVE",
                   help="comma-separated THREADS:OMP_WAIT_POLICY (THREADS 'all' = torch's default)")
    p.add_argument("--competitor", default="matmul", choices=sorted(COMPETITORS))
    p.add_argument("--competitor-seconds", type=float, default=600.0,
                   help="the competitor stops by itself after this long (it is also stopped when a measurement ends)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(args)
        return 0
    rows = []
    for spec in args.configs.split(","):
        threads_s, policy = spec.split(":")
        threads = None if threads_s == "all" else int(threads_s)
        idle = measure(args, threads, policy, None)
        shared = measure(args, threads, policy, args.competitor)
        row = {"threads": idle["threads"], "omp_wait_policy": policy, "idle_images_per_s": idle["images_per_s"],
               "shared_images_per_s": shared["images_per_s"], "idle_step_s": idle["step_s"],
               "shared_step_s": shared["step_s"], "ratio": shared["images_per_s"] / idle["images_per_s"]}
        if "warning" in shared:
            row["warning"] = shared["warning"]
        rows.append(row)
        print(f"{spec}: idle {row['idle_images_per_s']:.2f} img/s, shared {row['shared_images_per_s']:.2f} img/s, "
              f"ratio {row['ratio']:.2f}", file=sys.stderr, flush=True)
    report = {"preset": args.preset, "batch": args.batch, "steps": args.steps, "perceptual_fraction": args.perceptual_fraction,
              "data": args.data or "synthetic", "competitor": args.competitor, "cpu_count": os.cpu_count(), "results": rows}
    if args.json:
        print(json.dumps(report))
    else:
        print("| threads | OMP_WAIT_POLICY | idle img/s | with one busy thread img/s | shared / idle |")
        print("|---:|---|---:|---:|---:|")
        for r in rows:
            print(f"| {r['threads']} | {r['omp_wait_policy']} | {r['idle_images_per_s']:.2f} | "
                  f"{r['shared_images_per_s']:.2f} | {r['ratio']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
