"""The scenes study (issue 36): does the caption free the tokens, where the answer is known?

TexTok and the no-text baseline (``model.text_in=none data.caption_dropout=0.0``) on the procedural
scenes data set (``textok data fetch scenes``: captions state every factor but each object's
small offset), ``configs/scenes32_textok.yaml``, identical recipe, budget and seed per pair:

- **main**: both arms at N = 1, 2, 4, 8 tokens x 8 channels, seed 0, scored at three budgets
  (``--steps`` / 4, / 2, and ``--steps``: the learning curve; the recipe's learning rate is constant
  after warm-up with an EMA, so the run stopped at a budget and resumed is the longer run);
- **seeds**: seeds 1 and 2 of both arms at N = 1 and 4, then (last) at N = 2 and 8 (final budget only);
- **richness**: TexTok at N = 1 with captions stating only the shapes, or shapes and colours
  (``data.caption_variant=shapes`` / ``shapes_colours``; the main run is the full caption);
- **encoder**: TexTok at N = 1 with all-mpnet-base-v2 (``model.text_encoder=mpnet``, width 768); both encoders
  again with ``model.text_norm=true`` (a LayerNorm before the text projection: their features differ ~3.6x in scale).

Every scored budget: PSNR, SSIM and LPIPS on ``--eval-num`` (300) evenly spaced images of ``val`` and
``val_compositional`` (``textok.metrics.evaluate_tokenizer``), rFID on the same images at the final budget
(on ``--rfid-splits``: a later call with more splits adds the missing rFIDs from the stage model, untrained),
and PSNR / SSIM on ``TRAIN_PROBE`` evenly spaced training images (the train probe: in this regime train and
val should agree).

Idempotent and resumable: one score file per run, ``docs/results/scenes/runs/<run>.json``
(``--results``), holding every scored budget with the commit, CPU, threads, effective config and
training seconds; a budget already in it is skipped and a stopped training resumes from its last
checkpoint (``--work``, outside the repository). ``--workers 2`` runs two runs side by side, each a
subprocess with ``--threads`` (1) thread(s); an OS lock per run keeps a second scheduler off it.

    python -m studies.scenes.run --prepare                 # fetch data/scenes + text caches (once)
    python -m studies.scenes.run --list                    # runs, what is done, the time estimate
    python -m studies.scenes.run --workers 2               # run / resume everything
    python -m studies.scenes.run --runs 'textok-n1-*' baseline-n1-s0 --steps 2000
    python -m studies.scenes.run --job textok-n1-s0        # one run, in this process (what a worker runs)
"""

from __future__ import annotations

import argparse
import dataclasses
import fnmatch
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from ..common import ArmRun, child_env, commit_scores, flock, git_commit, module_command, worker_setup

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "configs" / "scenes32_textok.yaml"
RESULTS = REPO / "docs" / "results" / "scenes" / "runs"
WORK = Path(os.environ.get("TEXTOK_SCENES_WORK", Path.home() / ".cache" / "textok" / "studies" / "scenes"))
DATA = "data/scenes"
STEPS = 5000  # final budget: 5k steps x 32 images = 1.6 views of each of the 100k training scenes
SPLITS = ("val", "val_compositional")
TRAIN_PROBE = 1000
# Images of each split scored (evenly spaced; the rFID reference is the same images). The Inception pass is
# ~0.3-0.6 s an image on one core of the 2-core EPYC, more than the training: 1,000 a split made one scored budget
# cost ~20 core-minutes under load. rFID over 300 images is biased upwards, but equally for both arms.
EVAL_NUM = 300
CAPTION_VARIANTS = ("full", "shapes", "shapes_colours")
# Seconds per step on one thread, for the estimate printed before running (replaced by the measured medians
# once runs have finished). Measured on the shared 2-core machine as CPU time per step relative to the emoji p8
# recipe in the same minute (load average ~3.5): TexTok 0.46 s, baseline 0.25 s, emoji p8 1.64 s, whose study
# runs took 0.50 s/step: TexTok ~0.28x and the baseline ~0.15x of it, plus data loading (~0.05 s per batch).
PRIOR_SECONDS_PER_STEP = {"textok": 0.15, "baseline": 0.08}
PRIOR_EVAL_SECONDS = 240.0  # one scored budget: rFID on 2 x 1,000 images + LPIPS + the train probe, one core
FEATURES = None  # the Inception network for rFID (None: loaded by textok.metrics); tests put a stand-in here


@dataclasses.dataclass(frozen=True)
class Run(ArmRun):  # name, arm, num_tokens, seed
    group: str = "main"  # main | seeds | richness | encoder
    overrides: tuple[str, ...] = ()
    curve: bool = False  # scored at steps/4 and steps/2 too

    def budgets(self, steps: int) -> tuple[int, ...]:
        return tuple(sorted({max(1, steps // 4), max(1, steps // 2), steps})) if self.curve else (steps,)

    @property
    def encoder(self) -> str | None:
        if self.arm == "baseline":
            return None
        return next((o.split("=", 1)[1] for o in self.overrides if o.startswith("model.text_encoder=")), "minilm")


def study_runs() -> list[Run]:
    # in the order the scheduler starts them: what the verdict needs first. The learning curve (two extra scored
    # budgets, ~4 core-minutes each) at N = 1 only.
    runs = [Run(f"{arm}-n{n}-s0", arm, n, curve=n == 1) for n in (1, 2, 4, 8) for arm in ("textok", "baseline")]
    runs += [Run(f"{arm}-n1-s{seed}", arm, 1, seed=seed, group="seeds") for seed in (1, 2)
             for arm in ("textok", "baseline")]
    runs += [Run(f"textok-n1-s0-{v.replace('_', '-')}", "textok", 1, group="richness",
                 overrides=(f"data.caption_variant={v}",)) for v in ("shapes", "shapes_colours")]
    runs += [Run(f"{arm}-n4-s{seed}", arm, 4, seed=seed, group="seeds") for seed in (1, 2)
             for arm in ("textok", "baseline")]
    runs.append(Run("textok-n1-s0-mpnet", "textok", 1, group="encoder",
                    overrides=("model.text_encoder=mpnet", "model.text_dim=768")))
    # the encoders' features differ ~3.6x in scale (mpnet's are smaller): both again with a LayerNorm before the text
    # projection (model.text_norm), so that the comparison is of what they encode, not of their scale
    runs += [Run("textok-n1-s0-ln", "textok", 1, group="encoder", overrides=("model.text_norm=true",)),
             Run("textok-n1-s0-mpnet-ln", "textok", 1, group="encoder",
                 overrides=("model.text_encoder=mpnet", "model.text_dim=768", "model.text_norm=true"))]
    # beyond the 3 seeds at N = 1 and 4: seeds at N = 2 and 8 too, so the gain-vs-N line has a spread
    runs += [Run(f"{arm}-n{n}-s{seed}", arm, n, seed=seed, group="seeds") for n in (2, 8) for seed in (1, 2)
             for arm in ("textok", "baseline")]
    return runs


def select(runs: list[Run], patterns: list[str] | None) -> list[Run]:
    """The runs whose names match any of ``patterns`` (shell globs; all when none), in the order of the first pattern
    each matches (the order they start in: ``--runs textok-n1-s0-mpnet '*'`` starts that one first); an unmatched
    pattern is an error."""
    if not patterns:
        return runs
    patterns = [p for arg in patterns for p in arg.split(",") if p]
    for p in patterns:
        if not any(fnmatch.fnmatchcase(r.name, p) for r in runs):
            raise SystemExit(f"--runs {p!r} matches no run; runs: {', '.join(r.name for r in runs)}")
    return list({r.name: r for p in patterns for r in runs if fnmatch.fnmatchcase(r.name, p)}.values())


# ---- score files -------------------------------------------------------------------------------
def _recipe(data: str) -> dict | None:
    """The data set's generator recipe (its manifest's ``recipe``: count, size, seed), so a score names its data."""
    path = Path(data) / "manifest.json"
    return json.loads(path.read_text()).get("recipe") if path.is_file() else None


def score_file(results: Path, run: Run | str) -> Path:
    return Path(results) / f"{getattr(run, 'name', run)}.json"


def load_scores(results: Path, run: Run | str) -> dict:
    path = score_file(results, run)
    return json.loads(path.read_text()) if path.is_file() else {}


def done_budgets(results: Path, run: Run | str) -> set[int]:
    return {int(s) for s in load_scores(results, run).get("budgets", {})}


def pending_budgets(results: Path, run: Run, steps: int) -> list[int]:
    done = done_budgets(results, run)
    return [s for s in run.budgets(steps) if s not in done]


def missing_rfid(results: Path, run: Run | str, steps: int, rfid_splits: tuple[str, ...] = SPLITS) -> list[str]:
    """The ``rfid_splits`` whose rFID the run's scored final budget lacks (an earlier ``--rfid-splits`` left it out)."""
    final = load_scores(results, run).get("budgets", {}).get(str(steps))
    return [s for s in rfid_splits if final is not None and final[s].get("rfid") is None]


def is_pending(results: Path, run: Run, steps: int, rfid_splits: tuple[str, ...] = SPLITS) -> bool:
    return bool(pending_budgets(results, run, steps) or missing_rfid(results, run, steps, rfid_splits))


# ---- one run (a worker) ------------------------------------------------------------------------
def lock(work: Path, name: str, blocking: bool):
    """An OS lock on ``work/locks/<name>.lock`` (None if another process holds it and not ``blocking``)."""
    return flock(work / "locks" / f"{name}.lock", blocking)


def reference_stats(work: Path, data: str, split: str, size: int, device: str = "cpu", num: int | None = None):
    """Inception statistics of ``num`` evenly spaced images of ``split`` (all when None; computed once under a
    lock, kept in ``work``)."""
    from textok.metrics import dataset_stats, load_stats, save_stats

    path = work / "reference" / f"{Path(data).resolve().name}_{split}_{size}px_{num or 'all'}.npz"
    with lock(work, f"reference-{split}-{size}", blocking=True):
        if not path.is_file():
            save_stats(path, dataset_stats(data, num=num, split=split, image_size=size, keep_features=False,
                                           progress=False, device=device, extractor=FEATURES))
    return load_stats(path)


def score(run: Run, model_dir: Path, work: Path, data: str, size: int, device: str, num: int | None = EVAL_NUM,
          rfid: bool = True, rfid_splits: tuple[str, ...] = SPLITS) -> dict:
    """Scores of one model on ``num`` evenly spaced images of each of SPLITS (rFID when ``rfid`` on ``rfid_splits``,
    PSNR, SSIM, LPIPS) and the train probe (PSNR, SSIM)."""
    from textok.metrics import evaluate_tokenizer

    out = {}
    for split in SPLITS:
        rfid_here = rfid and split in rfid_splits
        ref = reference_stats(work, data, split, size, device, num) if rfid_here else None
        t = time.perf_counter()
        r = evaluate_tokenizer([str(model_dir)], data, split=split, num=num, names=[run.name], progress=False,
                               reference=ref, rfid=rfid_here, caption_variant=run.caption_variant, device=device,
                               grid_images=0, extractor=FEATURES)["results"][0]
        out[split] = {"num_images": r["num"], "rfid": r.get("rfid"), "psnr": r["psnr"], "ssim": r["ssim"],
                      "lpips": r["lpips"], "eval_seconds": round(time.perf_counter() - t, 1)}
    t = time.perf_counter()
    r = evaluate_tokenizer([str(model_dir)], data, split="train", num=TRAIN_PROBE, rfid=False, lpips=False,
                           grid_images=0, progress=False, caption_variant=run.caption_variant,
                           device=device)["results"][0]
    out["train_probe"] = {"num_images": r["num"], "psnr": r["psnr"], "ssim": r["ssim"],
                          "eval_seconds": round(time.perf_counter() - t, 1)}
    return out


def run_job(run: Run, steps: int, work: Path, results: Path, data: str, config: Path = CONFIG,
            device: str = "cpu", extra: tuple[str, ...] = (), eval_num: int | None = EVAL_NUM,
            rfid_splits: tuple[str, ...] = SPLITS) -> dict:
    """Train ``run`` through each pending budget and score it there (rFID at the final budget only, on
    ``rfid_splits``: the curve's earlier budgets get PSNR / SSIM / LPIPS); returns the run's score record.
    ``extra``: config overrides for every run (tests: a tiny model); ``eval_num``: images scored per split (all
    when None)."""
    import torch

    from textok.config import to_dict
    from textok.io import copy_dir_atomic, write_json_atomic
    from textok.training import TokenizerTask, Trainer, cpu_name, load_config
    from textok.training.checkpoint import latest_checkpoint

    held = lock(work, run.name, blocking=False)
    if held is None:
        raise SystemExit(f"{run.name}: another process holds {work / 'locks' / (run.name + '.lock')}")
    try:
        out = work / "runs" / run.name
        for budget in pending_budgets(results, run, steps):
            overrides = run.config_overrides() + [f"data.root={data}", f"schedule.max_steps={budget}",
                                                  "logging.progress=false", *extra]
            cfg = load_config(config, overrides)
            resume = latest_checkpoint(out / "checkpoints") is not None
            result = Trainer(TokenizerTask(cfg), cfg, out, resume=resume).train()
            stage = copy_dir_atomic(out / "model", work / "stages" / run.name / f"step_{budget:07d}")
            record = load_scores(results, run)
            before = max((b["train_seconds_total"] for b in record.get("budgets", {}).values()
                          if int(b["steps"]) < budget), default=0.0)
            total = result.total_seconds if result.total_seconds_complete else before + result.seconds
            scores = score(run, stage, work, data, cfg.model.image_size, device, eval_num, rfid=budget == steps,
                           rfid_splits=rfid_splits)
            record.update({"run": run.name, "arm": run.arm, "num_tokens": run.num_tokens, "seed": run.seed,
                           "group": run.group, "caption_variant": run.caption_variant, "encoder": run.encoder,
                           "config": Path(config).name, "overrides": run.config_overrides() + list(extra)})
            record.setdefault("budgets", {})[str(budget)] = {
                "steps": budget, "train_seconds_total": round(total, 1),
                "seconds_per_step": round(total / budget, 4), "images_per_second": round(result.images_per_second, 2),
                "final_loss": result.last_logs.get("loss"), "threads": torch.get_num_threads(), "cpu": cpu_name(),
                "device": device, "date": time.strftime("%Y-%m-%d"), "commit": git_commit(),
                "data": {"root": str(data), "recipe": _recipe(data)}, "eval_num": eval_num,
                "effective_config": to_dict(cfg), **scores,
            }
            write_json_atomic(score_file(results, run), record)
            v = scores["val"]
            rfid = "-" if v["rfid"] is None else f"{v['rfid']:.1f}"
            print(f"[scenes] {run.name} @ {budget}: val PSNR {v['psnr']:.2f} rFID {rfid} | compositional PSNR "
                  f"{scores['val_compositional']['psnr']:.2f} | train probe {scores['train_probe']['psnr']:.2f} "
                  f"({total / budget:.3f} s/step)", flush=True)
        fill_rfid(run, steps, work, results, data, device, rfid_splits)
        return load_scores(results, run)
    finally:
        held.close()


def fill_rfid(run: Run, steps: int, work: Path, results: Path, data: str, device: str = "cpu",
              rfid_splits: tuple[str, ...] = SPLITS) -> None:
    """Add the rFID a finished run's final budget lacks on ``rfid_splits``, from its stage model (no training).

    The images are the ones scored then (the record's ``eval_num``); the stage model must reproduce the recorded
    PSNR on them, so the added rFID is of the model that was scored. Where and when it was added is recorded."""
    import torch

    from textok.io import write_json_atomic
    from textok.metrics import evaluate_tokenizer
    from textok.training import cpu_name

    missing = missing_rfid(results, run, steps, rfid_splits)
    if not missing:
        return
    stage = work / "stages" / run.name / f"step_{steps:07d}"
    if not (stage / "model.safetensors").is_file():
        raise SystemExit(f"{run.name}: no stage model at {stage} to add the rFID on {', '.join(missing)} from")
    for split in missing:
        record = load_scores(results, run)
        final = record["budgets"][str(steps)]
        num, size = final.get("eval_num"), final["effective_config"]["model"]["image_size"]
        ref = reference_stats(work, data, split, size, device, num)
        t = time.perf_counter()
        r = evaluate_tokenizer([str(stage)], data, split=split, num=num, names=[run.name], progress=False,
                               reference=ref, rfid=True, lpips=False, caption_variant=run.caption_variant,
                               device=device, grid_images=0, extractor=FEATURES)["results"][0]
        scored = final[split]
        if r["num"] != scored["num_images"] or abs(r["psnr"] - scored["psnr"]) > 1e-3:
            raise SystemExit(f"{run.name}: the stage model {stage} gives PSNR {r['psnr']:.4f} on {r['num']} {split} "
                             f"images, the score file {scored['psnr']:.4f} on {scored['num_images']}: not the model "
                             "that was scored; rFID not added")
        scored["rfid"] = r["rfid"]
        scored["rfid_added"] = {"date": time.strftime("%Y-%m-%d"), "commit": git_commit(), "cpu": cpu_name(),
                                "threads": torch.get_num_threads(), "device": device,
                                "eval_seconds": round(time.perf_counter() - t, 1)}
        write_json_atomic(score_file(results, run), record)
        print(f"[scenes] {run.name} @ {steps}: {split} rFID {r['rfid']:.1f} added (PSNR {r['psnr']:.2f} as scored)",
              flush=True)


# ---- data --------------------------------------------------------------------------------------
def needed_caches(runs: list[Run]) -> dict[str, set[str]]:
    """encoder -> the caption variants its text cache must hold, for ``runs``."""
    need: dict[str, set[str]] = {}
    for r in runs:
        if r.encoder:
            need.setdefault(r.encoder, set()).add(r.caption_variant)
    return need


def missing_data(data: str, runs: list[Run]) -> list[str]:
    """The commands that would make ``data`` ready for ``runs`` (none when it is)."""
    from textok.data.text_cache import load_text_cache

    root = Path(data)
    if not (root / "captions.jsonl").is_file():
        cmds = [f"textok data fetch scenes --root {data}"]
        return cmds + [f"textok embed-text --data {data} --encoder {e} --variants {','.join(sorted(v))}"
                       for e, v in needed_caches(runs).items()]
    cmds = []
    for encoder, variants in needed_caches(runs).items():
        cache = load_text_cache(root, encoder)
        if cache is None or not all(_variant_cached(root, cache, v) for v in variants):
            cmds.append(f"textok embed-text --data {data} --encoder {encoder} --variants {','.join(sorted(variants))}")
    return cmds


def _variant_cached(root: Path, cache, variant: str) -> bool:
    """Whether ``cache`` holds the first and last caption of each split in ``variant`` (a cheap check)."""
    from textok.data import list_splits, open_dataset

    for split in list_splits(root):
        ds = open_dataset(root, split, caption_variant=variant)
        if not all(ds.eval_caption(i) in cache for i in (0, len(ds) - 1)):
            return False
    return True


# ---- the estimate ------------------------------------------------------------------------------
def seconds_per_step(results: Path) -> tuple[dict[str, float], float, str]:
    """Per arm: the median measured s/step of finished runs (else the prior), the seconds per scored budget, and
    where the numbers come from."""
    rates: dict[str, list[float]] = {"textok": [], "baseline": []}
    evals = []
    for run in study_runs():
        for b in load_scores(results, run).get("budgets", {}).values():
            if b.get("device", "cpu") == "cpu" and b.get("threads") == 1:
                rates[run.arm].append(b["seconds_per_step"])
            evals.append(sum(b[s]["eval_seconds"] for s in (*SPLITS, "train_probe")))
    median = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    per_step = {arm: median(xs) if xs else PRIOR_SECONDS_PER_STEP[arm] for arm, xs in rates.items()}
    source = "measured" if rates["textok"] and rates["baseline"] else "prior (measured under load, see run.py)"
    return per_step, (median(evals) if evals else PRIOR_EVAL_SECONDS), source


def estimate(runs: list[Run], results: Path, steps: int, workers: int) -> str:
    per_step, per_eval, source = seconds_per_step(results)
    train = evals = 0.0
    for run in runs:
        pending = pending_budgets(results, run, steps)
        if pending:
            have = max((s for s in done_budgets(results, run) if s < max(pending)), default=0)
            train += (max(pending) - have) * per_step[run.arm]
            evals += len(pending) * per_eval
    total = train + evals
    return (f"estimate ({source}: {per_step['textok']:.3f} s/step TexTok, {per_step['baseline']:.3f} s/step "
            f"baseline, {per_eval:.0f} s per scored budget, one thread each): training {train / 3600:.1f} "
            f"+ scoring {evals / 3600:.1f} core-hours = {total / 3600:.1f} core-hours, ~{total / 3600 / workers:.1f} h "
            f"wall with {workers} worker(s)")


def listing(runs: list[Run], results: Path, steps: int) -> str:
    lines = []
    for run in runs:
        rec = load_scores(results, run)
        done = sorted(int(s) for s in rec.get("budgets", {}))
        pend = pending_budgets(results, run, steps)
        last = rec["budgets"][str(done[-1])] if done else None
        score = (f"val PSNR {last['val']['psnr']:.2f}, compositional {last['val_compositional']['psnr']:.2f}"
                 if last else "")
        no_rfid = missing_rfid(results, run, steps)
        score += f" (no rFID on {', '.join(no_rfid)})" if no_rfid else ""
        lines.append(f"  {run.name:28s} {run.group:9s} done {done or '-'} pending {pend or '-'} {score}")
    return "\n".join(lines)


# ---- the scheduler -----------------------------------------------------------------------------
def schedule(runs: list[Run], args) -> int:
    work, results = Path(args.work).resolve(), Path(args.results).resolve()
    todo = [r for r in runs if is_pending(results, r, args.steps, tuple(args.rfid_splits))]
    print(estimate(todo, results, args.steps, args.workers), flush=True)
    running: dict[str, tuple[subprocess.Popen, float]] = {}
    failed = []
    while todo or running:
        while todo and len(running) < args.workers:
            run = todo.pop(0)
            probe = lock(work, run.name, blocking=False)
            if probe is None:
                print(f"[scenes] {run.name}: held by another process, skipped", flush=True)
                continue
            probe.close()
            log = work / "logs" / f"{run.name}.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            cmd = module_command("studies.scenes.run", "--job", run.name, "--steps", str(args.steps),
                                 "--work", str(work), "--results", str(results), "--data", args.data,
                                 "--config", str(args.config), "--device", args.device, "--eval-num", str(args.eval_num),
                                 "--rfid-splits", *args.rfid_splits, *[f"--override={o}" for o in args.override])
            env = child_env(OMP_NUM_THREADS=str(args.threads), TOKENIZERS_PARALLELISM="false")
            with open(log, "a") as f:
                f.write(f"[scenes] {time.strftime('%Y-%m-%d %H:%M:%S')} start {' '.join(cmd)}\n")
                f.flush()
                running[run.name] = (subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env), time.time())
            print(f"[scenes] {time.strftime('%H:%M:%S')} start {run.name} (log {log})", flush=True)
        time.sleep(args.poll)
        for name, (proc, t) in list(running.items()):
            if proc.poll() is None:
                continue
            del running[name]
            if proc.returncode != 0:
                failed.append(name)
                print(f"[scenes] {name} FAILED (exit {proc.returncode}); see {work / 'logs' / (name + '.log')}",
                      flush=True)
                continue
            print(f"[scenes] {time.strftime('%H:%M:%S')} done {name} ({time.time() - t:.0f} s)", flush=True)
            if args.commit:
                commit_scores(score_file(results, name), f"scenes study: {name} scores", REPO, "scenes")
    if failed:
        print(f"[scenes] failed: {', '.join(failed)}", flush=True)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", nargs="*", default=None, help="run names or globs (default: all)")
    p.add_argument("--steps", type=int, default=STEPS, help=f"final budget (default {STEPS}); curves at /4 and /2")
    p.add_argument("--workers", type=int, default=1, help="runs side by side, each a subprocess")
    p.add_argument("--threads", type=int, default=1, help="threads per worker")
    p.add_argument("--data", default=DATA)
    p.add_argument("--config", type=Path, default=CONFIG)
    p.add_argument("--work", type=Path, default=WORK, help="checkpoints, stage models, logs (outside the repository)")
    p.add_argument("--results", type=Path, default=RESULTS)
    p.add_argument("--device", default="cpu", help="scoring device (training: accelerate picks the GPU if any)")
    p.add_argument("--override", action="append", default=[], help="config override for every run (tests)")
    p.add_argument("--job", default=None, help="train and score this one run in this process")
    p.add_argument("--list", action="store_true", help="print the runs, their status and the estimate")
    p.add_argument("--prepare", action="store_true", help="fetch the data set and build the text caches it lacks")
    p.add_argument("--commit", action="store_true", help="git-commit each finished run's score file")
    p.add_argument("--eval-num", type=int, default=EVAL_NUM,
                   help=f"images scored per split, evenly spaced (default {EVAL_NUM}; 0: all)")
    p.add_argument("--rfid-splits", nargs="+", default=list(SPLITS), choices=list(SPLITS), metavar="SPLIT",
                   help="splits scored with rFID at the final budget (default: all; an Inception pass over 300 "
                        "images costs ~3-5 core-minutes on a 2-core EPYC)")
    p.add_argument("--embed-per-batch", action="store_true",
                   help="run without the text cache: TexTok embeds each batch's captions (cheaper for short runs)")
    p.add_argument("--poll", type=float, default=5.0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    runs = select(study_runs(), args.runs)
    if args.job:
        run = next((r for r in study_runs() if r.name == args.job), None)
        if run is None:
            raise SystemExit(f"--job {args.job}: no such run")
        worker_setup(args.threads)
        run_job(run, args.steps, args.work.resolve(), args.results.resolve(), args.data, args.config, args.device,
                tuple(args.override), args.eval_num or None, tuple(args.rfid_splits))
        return 0
    if args.list:
        print(listing(runs, args.results, args.steps))
        print(estimate(runs, args.results, args.steps, args.workers))
        return 0
    missing = missing_data(args.data, runs)
    if missing and args.prepare:
        for cmd in missing:
            print(f"[scenes] {cmd}", flush=True)
            subprocess.run([sys.executable, "-m", "textok", *cmd.split()[1:]], check=True)
        return 0
    if missing and args.embed_per_batch and (Path(args.data) / "captions.jsonl").is_file():
        # the text cache holds every training caption (~100k: ~1 h of MiniLM on a loaded core); a short run sees
        # a third of them, so embedding each batch's captions costs less than building the whole cache first
        print("[scenes] no text cache: TexTok runs embed each batch's captions (--embed-per-batch)", flush=True)
    elif missing:
        raise SystemExit("the data is not ready; run (or --prepare):\n  " + "\n  ".join(missing))
    if args.prepare:
        print("[scenes] data ready")
        return 0
    return schedule(runs, args)


if __name__ == "__main__":
    sys.exit(main())
