"""The scenes speedrun's records: ``docs/results/speedrun.json`` (kept) -> ``docs/results/speedrun.md`` (generated).

    python benchmarks/speedrun_report.py --add run.jsonl --levers muon in_memory --machine "idle"   # a record
    python benchmarks/speedrun_report.py --add run.jsonl --target                                   # another target's run
    python benchmarks/speedrun_report.py --add-trial trial.jsonl --lever "muon (lr 2e-3)" [--note "..."]  # an ablation run
    python benchmarks/speedrun_report.py --add-steps levers.json                                    # bench_levers.py --json (appended)
    python benchmarks/speedrun_report.py                                                            # rewrite the page

``run.jsonl`` / ``trial.jsonl`` are ``speedrun_scenes.py --json`` outputs (seed lines, then the summary).
A record keeps each seed's seconds and steps to target; an ablation run keeps its PSNR curve, from which
the page reads the steps to the run's target, the val PSNR reached by fixed step counts (load-independent: training
is deterministic for a seed) and the val PSNR reached by fixed training times (depends on the machine and its load).
Records are compared only with records on the same CPU.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
JSON = REPO / "docs" / "results" / "speedrun.json"
PAGE = REPO / "docs" / "results" / "speedrun.md"
AT_SECONDS = (60, 120, 150)
AT_STEPS = (500, 1000)
DEFAULT_TARGET_PSNR = 27.0


def read_run(path: Path) -> tuple[list[dict], dict]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    seeds = [r for r in rows if not r.get("summary")]
    summary = [r for r in rows if r.get("summary")]
    if not seeds or len(summary) != 1:
        raise SystemExit(f"{path}: expected speedrun_scenes.py --json output (seed lines and one summary)")
    return seeds, summary[0]


def record(seeds: list[dict], s: dict, levers: list[str], machine: str) -> dict:
    return {
        "name": s["name"], "commit": s["commit"], "cpu": s["cpu"], "threads": s["threads"],
        "processes": s.get("processes", 1), "machine": machine,
        "date": s["date"], "recipe": s["recipe"], "overrides": s["overrides"], "arm": s["arm"],
        "num_tokens": s["num_tokens"], "target_psnr": s["target_psnr"], "seeds": [r["seed"] for r in seeds],
        "seconds": s["seconds"], "steps": s["steps"], "median_seconds": s["median_seconds"],
        "best_psnr": s["best_psnr"], "val_compositional_psnr": [r["final_psnr_val_compositional"] for r in seeds],
        "seconds_per_step": [r["seconds_per_step"] for r in seeds], "images_seen": s["images_seen"],
        "tflops": s["tflops"], "matmul_tflops": s["matmul_tflops"], "matmul_fraction": s["matmul_fraction"],
        "mixed_precision": s["mixed_precision"], "levers": levers,
    }


def workers(r: dict) -> str:
    """``2`` (threads) or ``2 processes x 1`` for a data-parallel run."""
    p = r.get("processes", 1)
    return f"{p} processes x {r['threads']}" if p > 1 else str(r["threads"])


def psnr_at(curve: list, seconds: float) -> float | None:
    """The last scored PSNR at or before ``seconds`` of training (None if the run ended before)."""
    if not curve or curve[-1][1] < seconds * 0.98:
        return None
    return max((c for c in curve if c[1] <= seconds * 1.02), key=lambda c: c[1], default=[0, 0, None])[2]


def psnr_at_step(curve: list, step: int) -> float | None:
    """The PSNR at the last scored step at or before ``step`` (None if the run ended before ``step`` or nothing was
    scored by then: a run stopped at step 729 has no PSNR at 1000 steps)."""
    done = [c for c in curve or [] if c[0] <= step]
    if not done or max(c[0] for c in curve) < step:
        return None
    return max(done, key=lambda c: c[0])[2]


def steps_to_target(curve: list, target: float) -> int | None:
    """The first scored step whose PSNR is at least ``target`` (None if the run never reached it)."""
    return next((c[0] for c in sorted(curve or [], key=lambda c: c[0]) if c[2] >= target), None)


def speedups(records: list[dict]) -> list[tuple[str, float]]:
    """Per CPU (in order of first appearance): record 0's median over the last record's, on that CPU only. Record 0
    is the newest run of the study's recipe (a record without levers) before the last record: the one measured back
    to back with it, as a machine's speed drifts between sessions."""
    by_cpu: dict[str, list[dict]] = {}
    for r in records:
        by_cpu.setdefault(r["cpu"], []).append(r)
    out = []
    for cpu, recs in by_cpu.items():
        zero = next((r for r in reversed(recs[:-1]) if not r.get("levers")), recs[0])
        first, last = zero["median_seconds"], recs[-1]["median_seconds"]
        if len(recs) >= 2 and first is not None and last is not None and last > 0:
            out.append((cpu, first / last))
    return out


def short_recipe(recipe: str) -> str:
    """``/some/checkout/configs/x.yaml`` -> ``configs/x.yaml`` (a path inside the repo stays as it is)."""
    i = recipe.rfind("configs/")
    return recipe[i:] if i > 0 and recipe[i - 1] in "/\\" else recipe


def fmt(x, digits=1) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def bf16_fraction(r: dict) -> str:
    """The fraction of the bf16 matmul rate, or "–" where bf16 matmuls ran slower than fp32 on that CPU and the
    step computed in fp32 (a fraction of a rate the step never uses, often far above 100%)."""
    tf = r.get("matmul_tflops", {})
    if r.get("mixed_precision") == "no" and tf.get("bf16", 0) < tf.get("fp32", 0):
        return "– (bf16 slower)"
    return f"{r['matmul_fraction']['bf16']:.0%}"


def rows(records: list[dict], header: str) -> list[str]:
    out = [header, "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        secs = ", ".join(fmt(x) if x is not None else f"missed (best {b:.2f} dB)" for x, b in zip(r["seconds"], r["best_psnr"]))
        steps = ", ".join(str(x) if x is not None else "–" for x in r["steps"])
        sps = "/".join(f"{x:.3f}" for x in r["seconds_per_step"])
        comp = "/".join(f"{x:.2f}" for x in r["val_compositional_psnr"])
        frac = f"{r['matmul_fraction']['fp32']:.0%} / {bf16_fraction(r)}"
        out.append(f"| {r['name']} | {r['arm']}, {r['num_tokens']} | {r['target_psnr']} dB | {secs} | "
                   f"{fmt(r['median_seconds'])} | {steps} | {sps} | {comp} | {r['tflops']:.3f} | {frac} | "
                   f"{r['cpu']}, {workers(r)}, {r['machine']} | `{r['commit'][:7]}` | {', '.join(r['levers']) or '–'} |")
    return out


def render(data: dict) -> str:
    header = ("| {what} | arm, N | target | seconds to target (seeds) | median s | steps | s/step | val_comp. PSNR | "
              "TFLOP/s | of fp32 / bf16 matmul | CPU, threads, machine | commit | levers |")
    out = ["# Scenes speedrun", "",
           "Training seconds until TexTok (N = 1 token x 8 channels) reaches a val PSNR on the frozen scenes data "
           "(25,000 training scenes, 32 px, seed 0; PSNR of the EMA weights on 300 evenly spaced `val` scenes). "
           "Generated by `benchmarks/speedrun_report.py` from [speedrun.json](speedrun.json); the runs are "
           "`benchmarks/speedrun_scenes.py` (command per row). The clock counts training only.", "",
           "## Records", ""] + rows(data.get("records", []), header.format(what="record"))
    for cpu, x in speedups(data.get("records", [])):
        out += ["", f"Speed-up of the last record over record 0 on {cpu}: **{x:.2f}x** (medians, same CPU, measured back "
                    f"to back)."]
    out += ["", "Commands: `python benchmarks/speedrun_scenes.py --json` (record 0: the study's recipe, "
            "`configs/scenes32_textok.yaml`); `python benchmarks/speedrun_scenes.py --recipe configs/scenes32_fast.yaml "
            "--seeds 3 --json` (record 1; later records add their overrides); record 2 = `python benchmarks/speedrun_scenes.py "
            "--recipe configs/scenes32_speedrun.yaml --threads 1 --seeds 3 --check-every 50 --json optim.batch_size=16 "
            "optim.muon_scope=blocks model.mlp_act=gelu_tanh` (the config was record 2's recipe until record 3); "
            "record 3 = `python benchmarks/speedrun_scenes.py --recipe configs/scenes32_speedrun.yaml --processes 2 "
            "--threads 1 --seeds 3 --check-every 50 --json` at the row's commit (the config was record 3's recipe until "
            "record 4; at later commits add `model.mlp_act=gelu optim.implementation=auto optim.muon_ns_steps=5 "
            "model.text_in=both ema.decay=0.99`); record 4 = the same command (the config's recipe until record 5; "
            "at later commits add `grad_sync=ddp optim.muon_shard=false optim.muon_ns=quintic model.prune_last_block=false`); "
            "record 5 = the same command."]
    if data.get("targets"):
        out += ["", "## Other runs", "", "T2: the no-text baseline at N = 8 to 27 dB (the compression question); T3: TexTok "
                "N = 1 to 32 dB (or the best PSNR by `--max-seconds`). Commands: `python benchmarks/speedrun_scenes.py --recipe "
                "configs/scenes32_fast.yaml --arm baseline --num-tokens 8 --max-seconds 300 --check-every 25 --json` and "
                "`... --target-psnr 32 --max-seconds 300 --check-every 25 --json`. A run that is faster than the last record by "
                "less than that record's seeds' spread is listed here, not as a record.", ""] + rows(data["targets"], header.format(what="run"))
    trials = data.get("trials", [])
    if trials:
        out += ["", "## Levers: val PSNR after a fixed training time (one seed each)", "",
                "Each row is one `speedrun_scenes.py` run with the overrides shown (`--max-seconds`, one seed), measured "
                "on the CPU named in its row. Rows named \"fast recipe\" ran `--recipe configs/scenes32_fast.yaml`, the "
                "others the default (the study's) recipe: `python benchmarks/speedrun_scenes.py --max-seconds 150 "
                "--check-every 25 --json [--recipe ...] OVERRIDES` (AMD EPYC rows; the Intel Xeon rows: `--check-every 50`, "
                "`OMP_NUM_THREADS=1`, no `--max-seconds`: each ran to the target; rows named \"record 2's recipe\": "
                "`--recipe configs/scenes32_speedrun.yaml --threads 1 --check-every 50 optim.batch_size=16 "
                "optim.muon_scope=blocks model.mlp_act=gelu_tanh` (the config was record 2's recipe until record 3; "
                "\"2 processes\" rows: `--processes 2`), the later ones with `--max-seconds 330`). "
                "The steps columns do not depend on the machine or its "
                "load, since training is deterministic for a seed: \"steps to target\" is the first scored step (every 25 "
                f"or 50 steps, every 100 for record 0's run) at which the val PSNR reached the run's target ({DEFAULT_TARGET_PSNR:g} "
                "dB unless the run set another; \"–\" with the best PSNR if it never did), and \"PSNR @ N steps\" the last "
                "scored by step N (\"–\" if the run stopped before step N). The seconds columns (s/step, and the PSNR last scored by that many seconds of training) "
                "depend on the machine and its load: compare them only between rows on the same CPU. One seed: differences "
                "under ~0.5 dB are within run-to-run noise.", "",
                "| lever | overrides | CPU, threads | steps to target | " + " | ".join(f"PSNR @ {n} steps" for n in AT_STEPS)
                + " | s/step | " + " | ".join(f"PSNR @ {t} s" for t in AT_SECONDS) + " |",
                "|---|---|---|---|" + "---|" * len(AT_STEPS) + "---|" + "---|" * len(AT_SECONDS)]
        for t in trials:
            curve = t["curve"]
            hit = steps_to_target(curve, t.get("target_psnr", DEFAULT_TARGET_PSNR))
            best = max((c[2] for c in curve), default=None)
            reach = str(hit) if hit is not None else ("–" if best is None else f"– (best {best:.2f} dB)")
            at_steps = " | ".join(fmt(psnr_at_step(curve, n), 2) for n in AT_STEPS)
            at_secs = " | ".join(fmt(psnr_at(curve, s), 2) for s in AT_SECONDS)
            lever = f"{t['lever']} ({t['note']})" if t.get("note") else t["lever"]
            where = f"{t['cpu']}, {workers(t)}" if t.get("threads") is not None else t["cpu"]
            out.append(f"| {lever} | `{' '.join(t['overrides'])}` | {where} | {reach} | {at_steps} | "
                       f"{t['seconds_per_step']:.3f} | {at_secs} |")
    steps = data.get("step_levers")
    if isinstance(steps, dict):
        steps = [steps]
    if steps:
        out += ["", "## Levers: seconds per step (side by side, one process)"]
        for st in steps:
            recipe = f"`{short_recipe(st['recipe'])}`" if st.get("recipe") else "the study's recipe"
            if st.get("overrides"):
                recipe += f" with `{' '.join(st['overrides'])}` for every variant"
            out += ["", f"`python benchmarks/bench_levers.py --json` on {st['cpu']}, {st['threads']} threads, "
                    f"commit `{st['commit'][:7]}`, {st['date']}: median of {st['steps']} steps after "
                    f"{st['warmup']}, best of {st['rounds']} interleaved rounds, on {recipe}.", "",
                    "| lever | overrides | s/step | vs none |", "|---|---|---|---|"]
            for r in st["rows"]:
                out.append(f"| {r['lever']} | `{' '.join(r['overrides']) or '-'}` | {r['seconds_per_step']:.4f} | "
                           f"{r['vs_none']} |")
    notes = data.get("notes", [])
    if notes:
        out += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--add", type=Path, help="a record: speedrun_scenes.py --json output")
    p.add_argument("--levers", nargs="*", default=[])
    p.add_argument("--machine", default="idle", help="idle, or what else ran")
    p.add_argument("--target", action="store_true", help="--add a run that is not a record (another target, or not "
                   "faster than the last record by more than its seeds' spread)")
    p.add_argument("--add-trial", type=Path, help="an ablation run: speedrun_scenes.py --json output")
    p.add_argument("--lever", help="the ablation run's name")
    p.add_argument("--note", help="an ablation run's note (shown after its name, in parentheses)")
    p.add_argument("--add-steps", type=Path, help="bench_levers.py --json output (appended to the list)")
    p.add_argument("--json-path", type=Path, default=JSON)
    p.add_argument("--page", type=Path, default=PAGE)
    args = p.parse_args(argv)
    data = json.loads(args.json_path.read_text()) if args.json_path.is_file() else {"records": []}
    if args.add:
        data.setdefault("targets" if args.target else "records", []).append(record(*read_run(args.add), args.levers,
                                                                                      args.machine))
    if args.add_trial:
        if not args.lever:
            p.error("--add-trial needs --lever NAME")
        seeds, s = read_run(args.add_trial)
        trial = {"lever": args.lever, "overrides": s["overrides"], "commit": s["commit"], "cpu": s["cpu"],
                 "threads": s["threads"], "processes": s.get("processes", 1), "target_psnr": s["target_psnr"],
                 "date": s["date"],
                 "seconds_per_step": seeds[0]["seconds_per_step"], "curve": seeds[0]["curve"]}
        if args.note:
            trial["note"] = args.note
        data.setdefault("trials", []).append(trial)
    if args.add_steps:
        old = data.get("step_levers")
        data["step_levers"] = ([old] if isinstance(old, dict) else list(old or [])) + [json.loads(args.add_steps.read_text())]
    if args.add or args.add_trial or args.add_steps:
        args.json_path.write_text(json.dumps(data, indent=1) + "\n")
    args.page.write_text(render(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
