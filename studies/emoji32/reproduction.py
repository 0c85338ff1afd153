"""The reproduction study: the paper's Table 1 in miniature (TexTok vs the no-text baseline).

Emoji at 32 px, ``configs/emoji32_textok_p8.yaml`` (``--config``; the first recipe, 4x4 patches,
was ``configs/emoji32_textok.yaml``), N in {1, 2, 4, 8} tokens x 8 channels, both arms with the
identical recipe, budget and seed; extra seeds at N = 1, 2 and 8 and ablations at N = 2, these
"side runs" at one fixed budget (``SIDE_BUDGET``).

Budgets double: every run is trained in stages (2k, 4k, 8k, ... steps). The recipe has a
constant learning rate after warm-up and an EMA, so stopping a run at 2k steps and extending
it to 4k (``--resume`` with a larger ``schedule.max_steps``) is exactly the 4k-step run; each
stage's EMA model is kept and scored on ``val`` and ``val_unseen`` (rFID on every image of the
split, PSNR, SSIM, LPIPS), and PSNR / SSIM on TRAIN_PROBE training images (the train probe). A run
is converged when doubling its steps changed val PSNR by less than ``--converged-db`` (0.3 dB);
the scheduler keeps doubling the runs that are not. ``--converged-split val_unseen`` reads the rule on the
emoji never seen in training instead (their PSNR levels off long before val's). Stages run budget by budget (every main run
at 2k before any at 4k); the side runs after the main runs' ``SIDE_BUDGET`` stage, each trained
straight to it and scored there only.

Idempotent and resumable: rerunning skips every stage whose score file exists and resumes a
stopped training from its last checkpoint. Workers are subprocesses with one thread each (two
on the 2-core machine), so timings are per core.

    python -m studies.emoji32.reproduction --workers 2                  # run / resume the study
    python -m studies.emoji32.reproduction --list                       # what is done, what is next
    python -m studies.emoji32.reproduction --job textok-n8-s0 --steps 2000   # one stage (what a worker runs)
    python -m studies.emoji32.reproduction --first textok-n4-s0 baseline-n4-s0   # these runs before the others
    python -m studies.emoji32.reproduction --cooldown textok-n2-s0 4000 1000    # a wsd cool-down branch, scored
    python -m studies.emoji32.reproduction --probe-train   # the training-set probe of stages scored without it

Run it from a ``git worktree`` at a fixed commit, so that editing the repository does not change a
running study. A scheduler may be restarted at any time: workers of the old one keep their runs
(OS locks) and are counted against ``--workers``. Start the new one from a *new* worktree path and
remove the old worktree only after its workers have exited: they import modules lazily while
scoring.

Scores: ``docs/results/reproduction/runs/<run>/step_XXXXXXX.json`` (``--results``); checkpoints
and stage models: ``--work`` (outside the repository; large). Only the scores are committed, so where ``--work``
does not outlive the machine (a fresh sandbox per session), an unfinished stage, and any budget beyond the last
scored one, trains again from step 0, and the figures that read stage models (``reproduction_report.py --grids``)
need the runs trained again.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from ..common import ArmRun, child_env, commit_scores, flock, git_commit, module_command, worker_setup

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "configs" / "emoji32_textok_p8.yaml"
STAGES = (2000, 4000, 8000, 16000, 32000)  # scoring a stage costs ~4 core-minutes: no 1k stage
# The seeds and the ablations are trained to this fixed budget, not to convergence: at a converged
# budget (>= 32k steps) they would cost tens of core-hours more (``--list`` prints how many). They are
# compared with the main runs' stage at the same budget (which serves as their seed 0).
SIDE_BUDGET = 8000
SPLITS = ("val", "val_unseen")  # the order each stage scores them (kept: the score files' record order)
# What each split measures (../shared SPEC §3, "held-out means new"; `textok data check data/emoji` counts the
# twins): `val` holds the other style (or a skin-tone sibling) of emoji seen in training, 640 of its 692 images
# under a training image's very caption, so it tests *recall*; `val_unseen` holds emoji never seen in training,
# the *new-emoji* test and the study's headline. The labels are the library's (textok.pretrained.EMOJI_SPLITS,
# as studies.stats names them: the report, the README's results block and the demo agree), and every table and
# verdict reads the new-emoji split first.
SPLIT_ABOUT = {"val_unseen": "emoji never seen in training: the headline",
               "val": "other renderings of training emoji (the other style or a skin-tone sibling), mostly under a "
                      "training image's caption: a recall test, not new images"}
REPORT_SPLITS = ("val_unseen", "val")  # new-emoji first
# The training-set probe: PSNR / SSIM of this many evenly spaced training images (no rFID: seconds, not
# minutes). Beside val and val_unseen it shows what a doubling buys on images the model has trained on.
TRAIN_PROBE = 692


@dataclasses.dataclass(frozen=True)
class Run(ArmRun):  # name, arm, num_tokens, seed
    ablation: str | None = None
    overrides: tuple[str, ...] = ()
    max_stage: int | None = None  # a side run: trained straight to this budget and scored there only
    priority: int = 0  # lower first, within a budget

    @property
    def stages(self) -> tuple[int, ...]:
        """The budgets scored: a main run's doublings (its learning curve), a side run's one budget."""
        return STAGES if self.max_stage is None else (self.max_stage,)

    def order(self, steps: int) -> tuple[int, bool, int]:
        """Scheduling key of this run's next stage: budget by budget (every main run's 2k stage before any 4k
        stage), the side runs after the main runs' SIDE_BUDGET stage, and then ``priority``."""
        side = self.max_stage is not None
        return (max(steps, SIDE_BUDGET) if side else steps), side, self.priority


def study_runs() -> list[Run]:
    runs = []
    for n in (1, 2, 4, 8):
        for arm in ("textok", "baseline"):
            runs.append(Run(f"{arm}-n{n}-s0", arm, n))
    # the LPIPS-share decision: the same TexTok N = 8 run with LPIPS on the whole batch
    runs.append(Run("textok-n8-s0-lpipsfull", "textok", 8, ablation="lpips_fraction_1.0",
                    overrides=("loss.perceptual_fraction=1.0",), max_stage=2000, priority=3))
    # the GAN decision: TexTok N = 2 with the discriminator (+ LeCAM + lazy R1) switched on at step 1,000, compared
    # at equal steps with textok-n2-s0 (narrow discriminator for 32 px, as the 64 px recipe)
    runs.append(Run("textok-n2-s0-gan", "textok", 2, ablation="gan", max_stage=4000, priority=3, overrides=(
        "loss.adversarial_weight=0.1", "loss.discriminator_start=1000", "loss.discriminator_channel_base=2048",
        "loss.discriminator_channel_max=128", "loss.lecam_weight=1.0e-4", "loss.r1_weight=10.0", "loss.r1_every=16")))
    # N = 2 and 8: the seeds; N = 1 (added later, after them): the largest text gain of Table 1, and a
    # pair trained again on another machine gave half its rFID gain, so its seed spread is measured too
    for n in (2, 8, 1):
        for seed in (1, 2):
            for arm in ("textok", "baseline"):  # N = 2's seeds before N = 8's, N = 1's last
                runs.append(Run(f"{arm}-n{n}-s{seed}", arm, n, seed=seed, max_stage=SIDE_BUDGET,
                                priority={2: 0, 8: 1, 1: 4}[n]))
    for name, overrides in (("class_only", ("data.caption_variant=class",)),  # the emoji subcategory as text
                            ("name_only", ("data.caption_variant=name",)),  # the emoji name, no category
                            ("text_encoder_only", ("model.text_in=encoder",)),
                            ("text_decoder_only", ("model.text_in=decoder",)),
                            ("cross_attention", ("model.text_conditioning=cross-attention",)),
                            ("caption_dropout_0.1", ("data.caption_dropout=0.1",))):
        runs.append(Run(f"textok-n2-s0-{name.replace('_', '-')}", "textok", 2, ablation=name, overrides=overrides,
                        max_stage=SIDE_BUDGET, priority=2))
    return runs


# ---- one stage (a worker) -------------------------------------------------------------------

def stage_file(results: Path, run: Run, steps: int) -> Path:
    return results / run.name / f"step_{steps:07d}.json"


def stage_dir(work: Path, run: str, steps: int) -> Path:
    """Where the EMA model of the run named ``run`` at ``steps`` is kept (``config.json`` + ``model.safetensors``)."""
    return Path(work) / "runs" / run / "stages" / f"step_{steps:07d}"


def reference_stats(work: Path, data: str, split: str, size: int):
    """Inception statistics of every image of ``split`` (computed once, kept in ``work``)."""
    from textok.metrics import dataset_stats, load_stats, save_stats

    path = work / "reference" / f"{split}_{size}px.npz"
    if path.is_file():
        return load_stats(path)
    stats = dataset_stats(data, split=split, image_size=size, keep_features=False, progress=False)
    save_stats(path, stats)
    return stats


def run_lock(work: Path, run: Run, blocking: bool):
    """An OS lock on the run (held by the worker training it), or None if another process holds it:
    a restarted scheduler never starts a second worker on a run that is still training."""
    return flock(work / "runs" / f"{run.name}.lock", blocking)


def is_locked(work: Path, run: Run) -> bool:
    lock = run_lock(work, run, blocking=False)
    if lock is None:
        return True
    lock.close()
    return False


def run_stage(run: Run, steps: int, work: Path, results: Path, data: str, config: Path = CONFIG) -> dict:
    import torch

    from textok.io import copy_dir_atomic, write_json_atomic
    from textok.metrics import evaluate_tokenizer
    from textok.training import TokenizerTask, Trainer, cpu_name, load_config
    from textok.config import to_dict
    from textok.training.checkpoint import latest_checkpoint

    out = work / "runs" / run.name
    cfg = load_config(config, run.config_overrides() + [f"data.root={data}", f"schedule.max_steps={steps}",
                                                        "logging.progress=false"])
    resume = latest_checkpoint(out / "checkpoints") is not None
    task = TokenizerTask(cfg)
    result = Trainer(task, cfg, out, resume=resume).train()
    trunk_checkpoint(work, run, steps)  # kept: a cool-down (--cooldown) can branch off it later
    # the EMA model at this budget, kept for later scoring and the figures
    stage_model = copy_dir_atomic(out / "model", stage_dir(work, run.name, steps))
    previous = [json.loads(p.read_text()) for p in sorted((results / run.name).glob("step_*.json"))]
    seconds_before = max((r["train_seconds_total"] for r in previous), default=0.0)
    # the trainer's count covers every step up to ``steps`` across the processes that trained them (a stage
    # stopped and resumed, even over sessions); a checkpoint older than that count covers only this process's part
    complete = result.total_seconds_complete
    total = result.total_seconds if complete else seconds_before + result.seconds
    train_seconds = total - seconds_before

    records = []
    for split in SPLITS:
        ref = reference_stats(work, data, split, cfg.model.image_size)
        t1 = time.perf_counter()
        report = evaluate_tokenizer([str(stage_model)], data, split=split, names=[run.name], progress=False,
                                    reference=ref, caption_variant=run.caption_variant)
        r = report["results"][0]
        records.append({
            "run": run.name, "arm": run.arm, "num_tokens": run.num_tokens, "seed": run.seed, "ablation": run.ablation,
            "split": split, "steps": steps, "num_images": r["num"], "rfid": r["rfid"], "psnr": r["psnr"],
            "ssim": r["ssim"], "lpips": r["lpips"], "eval_seconds": round(time.perf_counter() - t1, 1),
        })
    record = {
        "run": run.name, "steps": steps, "config": Path(config).name, "overrides": run.config_overrides(),
        "train_seconds": round(train_seconds, 1), "train_seconds_total": round(total, 1),
        "train_seconds_complete": complete,
        # the caption cache training read its text from (None: the encoder embedded every batch, ~1.4x the
        # seconds per step on a CPU, or the baseline, which has no text): what its speed depends on
        "text_cache": text_cache_used(task),
        "images_per_second": round(result.images_per_second, 2), "threads": torch.get_num_threads(),
        "cpu": cpu_name(), "date": time.strftime("%Y-%m-%d"), "final_loss": result.last_logs.get("loss"),
        # what made this stage: the code (a dirty tree says so) and the config the trainer ran with
        "commit": git_commit(), "effective_config": to_dict(cfg),
        "records": [dict(r, train_seconds=round(total, 1)) for r in records],
    }
    record["train_probe"] = train_probe(stage_model, data, run)
    write_json_atomic(stage_file(results, run, steps), record)
    return record


def text_cache_used(task) -> str | None:
    """The caption cache file a trained ``TokenizerTask`` read its captions' embeddings from, or None: no text
    (the baseline), ``data.use_text_cache`` off, or no cache in the data folder (``textok embed-text``)."""
    cache = task.text.cache if task.text is not None else None
    return None if cache is None else str(cache.path)


def train_probe(stage_model: Path, data: str, run: Run) -> dict:
    """PSNR / SSIM of the stage model on TRAIN_PROBE evenly spaced training images (EMA weights, uint8)."""
    from textok.metrics import evaluate_tokenizer

    t = time.perf_counter()
    r = evaluate_tokenizer([str(stage_model)], data, split="train", num=TRAIN_PROBE, rfid=False, lpips=False,
                           grid_images=0, progress=False, caption_variant=run.caption_variant)["results"][0]
    return {"num_images": r["num"], "psnr": r["psnr"], "ssim": r["ssim"],
            "eval_seconds": round(time.perf_counter() - t, 1)}


def probe_finished_stages(work: Path, results: Path, data: str) -> list[str]:
    """Add the training-set probe to every finished stage that lacks it and whose stage model is kept
    (stages scored before the probe existed). Returns one line per stage probed."""
    from textok.io import write_json_atomic

    written = []
    for run in study_runs():
        for steps, record in done_stages(results, run.name).items():
            model = stage_dir(work, run.name, steps)
            if "train_probe" in record or not model.is_dir():
                continue
            record["train_probe"] = train_probe(model, data, run)
            write_json_atomic(stage_file(results, run, steps), record)
            written.append(f"{run.name} @ {steps}: train-probe PSNR {record['train_probe']['psnr']:.2f}")
    return written


def trunk_checkpoint(work: Path, run: Run, steps: int) -> Path:
    """The constant-lr training checkpoint of ``run`` at ``steps`` (kept under ``work/trunks``: the
    run's own folder keeps only its last two)."""
    from textok.io import copy_dir_atomic

    kept = work / "trunks" / run.name / f"step_{steps:08d}"
    if not kept.is_dir():
        live = work / "runs" / run.name / "checkpoints" / f"step_{steps:08d}"
        if not live.is_dir():
            raise FileNotFoundError(f"{run.name}: no training checkpoint at step {steps} (neither {kept} nor {live})")
        kept.parent.mkdir(parents=True, exist_ok=True)
        copy_dir_atomic(live, kept)
    return kept


def cooldown_file(results: Path, run: Run, steps: int, cooldown: int) -> Path:
    return results / run.name / f"cooldown_{steps:07d}+{cooldown:05d}.json"


def run_cooldown(run: Run, steps: int, cooldown: int, work: Path, results: Path, data: str,
                 splits: tuple[str, ...] = SPLITS, config: Path = CONFIG) -> dict:
    """Warmup-stable-decay branch: the run's constant-lr checkpoint at ``steps`` trained ``cooldown`` more
    steps with the learning rate falling linearly to 0 (``schedule.decay=wsd``), which is exactly the
    (steps + cooldown)-step wsd run. Scores the EMA and the raw weights at the end on ``splits``."""
    import torch

    from textok.io import copy_dir_atomic, write_json_atomic
    from textok.metrics import evaluate_tokenizer
    from textok.training import TokenizerTask, Trainer, cpu_name, load_config
    from textok.training.checkpoint import latest_checkpoint

    trunk = trunk_checkpoint(work, run, steps)
    out = work / "cooldown" / f"{run.name}_{steps:07d}+{cooldown:05d}"
    total = steps + cooldown
    cfg = load_config(config, run.config_overrides() + [
        f"data.root={data}", f"schedule.max_steps={total}", "schedule.decay=wsd",
        f"schedule.cooldown_steps={cooldown}", "logging.progress=false"])
    if latest_checkpoint(out / "checkpoints") is None:  # start the branch from a copy of the trunk
        (out / "checkpoints").mkdir(parents=True, exist_ok=True)
        copy_dir_atomic(trunk, out / "checkpoints" / trunk.name)
        if not (out / "config.yaml").exists():
            shutil.copy(work / "runs" / run.name / "config.yaml", out / "config.yaml")
    t0 = time.perf_counter()
    task = TokenizerTask(cfg)
    result = Trainer(task, cfg, out, resume=True).train()
    train_seconds = time.perf_counter() - t0
    # the raw weights at the end of the cool-down, next to the EMA model the trainer exports
    raw = out / "raw"
    raw.mkdir(exist_ok=True)
    shutil.copy(out / "model" / "config.json", raw / "config.json")
    shutil.copy(latest_checkpoint(out / "checkpoints") / "model.safetensors", raw / "model.safetensors")
    records = []
    for split in splits:
        ref = reference_stats(work, data, split, cfg.model.image_size)
        t1 = time.perf_counter()
        report = evaluate_tokenizer([str(out / "model"), str(raw)], data, split=split, names=["ema", "raw"],
                                    progress=False, reference=ref, caption_variant=run.caption_variant)
        for weights, r in zip(("ema", "raw"), report["results"]):
            records.append({
                "run": run.name, "arm": run.arm, "num_tokens": run.num_tokens, "seed": run.seed,
                "ablation": run.ablation, "split": split, "steps": total, "trunk_steps": steps,
                "cooldown_steps": cooldown, "weights": weights, "num_images": r["num"], "rfid": r["rfid"],
                "psnr": r["psnr"], "ssim": r["ssim"], "lpips": r["lpips"],
                "eval_seconds": round(time.perf_counter() - t1, 1)})
    record = {"run": run.name, "steps": total, "trunk_steps": steps, "cooldown_steps": cooldown,
              "overrides": run.config_overrides() + ["schedule.decay=wsd", f"schedule.cooldown_steps={cooldown}"],
              "cooldown_train_seconds": round(train_seconds, 1), "text_cache": text_cache_used(task),
              "images_per_second": round(result.images_per_second, 2), "threads": torch.get_num_threads(),
              "cpu": cpu_name(), "date": time.strftime("%Y-%m-%d"), "final_loss": result.last_logs.get("loss"),
              "records": records}
    write_json_atomic(cooldown_file(results, run, steps, cooldown), record)
    return record


# ---- the scheduler --------------------------------------------------------------------------

def done_stages(results: Path, run: str) -> dict[int, dict]:
    """steps -> the score file of each finished budget of the run named ``run``."""
    out = {}
    for p in sorted((Path(results) / run).glob("step_*.json")):
        rec = json.loads(p.read_text())
        out[int(rec["steps"])] = rec
    return out


def val_psnr(record: dict, split: str = "val") -> float:
    return next(r["psnr"] for r in record["records"] if r["split"] == split)


def converged(psnr_by_steps: dict[int, float], converged_db: float = 0.3) -> bool:
    """The study's rule: the last budget doubled the previous one and moved val PSNR by < converged_db."""
    have = sorted(psnr_by_steps)
    return len(have) >= 2 and have[-1] == 2 * have[-2] and \
        abs(psnr_by_steps[have[-1]] - psnr_by_steps[have[-2]]) < converged_db


def next_stage(run: Run, done: dict[int, dict], converged_db: float, split: str = "val") -> int | None:
    """The next budget of ``run``, or None when it is finished (converged on ``split``'s PSNR, or a side run at
    its budget)."""
    # a side run is compared with its main run at equal budgets: it runs to its budget even if its PSNR
    # stalls (a GAN run's may, without having converged)
    if run.max_stage is None and converged({s: val_psnr(r, split) for s, r in done.items()}, converged_db):
        return None
    # never below a budget already reached (a run adopted at 4k has no 1k or 2k stage)
    return next((s for s in run.stages if s > max(done, default=0)), None)


def commit(results: Path, message: str) -> None:
    """Commit the score files (and nothing else) to the repository holding ``results``."""
    commit_scores(results, message, results, "study")


def schedule(args) -> None:
    runs = [r for r in study_runs() if not args.only or r.name in args.only]
    results, work = Path(args.results).resolve(), Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    import torch

    from textok.training import load_config

    size = load_config(args.config).model.image_size
    torch.set_num_threads(args.workers * args.threads)
    for split in SPLITS:  # once, before the workers need them
        reference_stats(work, args.data, split, size)
    torch.set_num_threads(1)
    running: dict[str, tuple[subprocess.Popen, int, float]] = {}
    failed: set[str] = set()
    while True:
        pending, elsewhere = [], 0
        for run in runs:
            if run.name in running or run.name in failed:
                continue
            if is_locked(work, run):  # a worker of an earlier scheduler is still on it (it takes a slot)
                elsewhere += 1
                continue
            s = next_stage(run, done_stages(results, run.name), args.converged_db, args.converged_split)
            if s is not None and s <= args.max_steps:
                pending.append(((run.name not in (args.first or ()), *run.order(s), run.name), s, run))
        pending.sort(key=lambda p: p[0])
        while pending and len(running) + elsewhere < args.workers:
            _, s, run = pending.pop(0)
            log = work / "logs" / f"{run.name}_step{s:07d}.log"
            env = child_env(OMP_NUM_THREADS=str(args.threads), TOKENIZERS_PARALLELISM="false")
            cmd = module_command("studies.emoji32.reproduction", "--job", run.name, "--steps", str(s),
                                 "--work", str(work), "--results", str(results), "--data", args.data,
                                 "--threads", str(args.threads), "--config", str(args.config))
            proc = launch(cmd, log, env, f"{run.name} -> {s}")
            running[run.name] = (proc, s, time.time())
            print(f"[study] {time.strftime('%H:%M:%S')} start {run.name} -> {s} steps (log {log})", flush=True)
        if not running:
            if any(is_locked(work, r) for r in runs):
                time.sleep(30)  # workers of an earlier scheduler are still running
                continue
            print("[study] nothing left to run", flush=True)
            return
        time.sleep(5)
        for name, (proc, s, t) in list(running.items()):
            if proc.poll() is None:
                continue
            del running[name]
            if proc.returncode != 0:
                failed.add(name)
                print(f"[study] {name} -> {s} FAILED (exit {proc.returncode}); see its log", flush=True)
                continue
            rec = json.loads(stage_file(results, next(r for r in runs if r.name == name), s).read_text())
            v = {r["split"]: r for r in rec["records"]}
            print(f"[study] {time.strftime('%H:%M:%S')} done {name} @ {s}: "
                  f"val PSNR {v['val']['psnr']:.2f} rFID {v['val']['rfid']:.1f} | unseen PSNR "
                  f"{v['val_unseen']['psnr']:.2f} rFID {v['val_unseen']['rfid']:.1f} ({time.time() - t:.0f}s)", flush=True)
            if args.commit:
                commit(results, f"reproduction: {name} at {s} steps (scores)")


def launch(cmd: list[str], log: Path, env: dict, what: str) -> subprocess.Popen:
    """Start one stage's worker with its output appended to ``log``: a stage resumed after a stop
    keeps the log of its earlier part (opening with "w" used to truncate it)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as out:  # the child keeps its own copy of the descriptor
        out.write(f"[study] {time.strftime('%Y-%m-%d %H:%M:%S')} start {what}\n")
        out.flush()
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)


def remaining_cost(results: Path, targets=(4000, 8000, 16000, 32000)) -> str:
    """Core-hours still needed to bring every run (within its cap) to each target budget, from the
    measured seconds per step (training + the stages' scoring) of the runs that have a stage."""
    runs, rates = study_runs(), {"textok": [], "baseline": []}
    done = {run.name: done_stages(results, run.name) for run in runs}
    for run in runs:
        if done[run.name]:
            last = max(done[run.name])
            rec = done[run.name][last]["records"]
            train = max(r["train_seconds"] for r in rec)  # the run's total training seconds up to ``last``
            rates[run.arm].append(train / last)
    every = rates["textok"] + rates["baseline"]
    if not every:
        return "no stage scored yet: no cost estimate"
    median = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731  (over runs: one thread each; GAN runs cost more)
    per_step = {arm: median(xs or every) for arm, xs in rates.items()}  # the text tokens make TexTok's steps dearer
    evals = [sum(r["eval_seconds"] for r in rec["records"]) for d in done.values() for rec in d.values()
             if all("eval_seconds" in r for r in rec["records"])]
    per_eval = sum(evals) / len(evals) if evals else 0.0
    lines = [f"cost at the measured medians of {per_step['textok']:.2f} s per step (TexTok arm), "
             f"{per_step['baseline']:.2f} s per step (baseline arm) and {per_eval:.0f} s per scored stage "
             "(one core each);\n"
             f"side runs (seeds, ablations) count at the first target that includes their budget:"]
    for target in targets:
        seconds = 0.0
        for run in runs:
            # a side run counts from the target that includes its one budget
            goal = target if run.max_stage is None else (run.max_stage if run.max_stage <= target else 0)
            have = max(done[run.name], default=0)
            if have < goal:
                seconds += (goal - have) * per_step[run.arm] + per_eval * sum(1 for s in run.stages if have < s <= goal)
        lines.append(f"  main runs at {target:>6} steps: {seconds / 3600:6.1f} core-hours more")
    # what the fixed side budget saves: the seeds and ablations trained to the last budget instead
    side = [r for r in runs if r.max_stage == SIDE_BUDGET]
    extra = sum((STAGES[-1] - SIDE_BUDGET) * per_step[r.arm] for r in side) / 3600
    lines.append(f"the {len(side)} seed and ablation runs at {STAGES[-1]} steps instead of {SIDE_BUDGET}: "
                 f"{extra:.1f} core-hours more than that")
    return "\n".join(lines)


def check_data(data: str, config: Path = CONFIG) -> None:
    """Exit with the command to run if the emoji data or its caption cache is missing. Without the cache the
    TexTok arm embeds every batch's captions (~1.4x the seconds per step on a CPU) and its embeddings differ in
    the last bits from the float16 cache every study run trained with."""
    from textok.data.text_cache import cache_path
    from textok.training import load_config

    if not (Path(data) / "captions.jsonl").is_file():
        sys.exit(f"{data}: no emoji data; run `textok data fetch emoji --root {data}` and "
                 f"`textok embed-text --data {data}` first")
    encoder = load_config(config, [f"data.root={data}"]).model.text_encoder
    cache = cache_path(data, encoder)
    if not cache.is_file():
        sys.exit(f"{data}: no caption cache for {encoder} ({cache}); run `textok embed-text --data {data}` first")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    p.add_argument("--work", default=os.environ.get("TEXTOK_STUDY", str(Path.home() / "textok-study")),
                   help="checkpoints, stage models, logs (large; outside the repository)")
    p.add_argument("--results", default=str(REPO / "docs" / "results" / "reproduction" / "runs"))
    p.add_argument("--data", default=str(REPO / "data" / "emoji"))
    p.add_argument("--config", type=Path, default=CONFIG, help="the recipe every run extends")
    p.add_argument("--converged-db", type=float, default=0.3)
    p.add_argument("--converged-split", choices=SPLITS, default="val",
                   help="the split whose PSNR the convergence rule reads (the issue's: val; val_unseen levels off "
                        "far sooner)")
    p.add_argument("--max-steps", type=int, default=STAGES[-1], help="train no stage beyond this budget")
    p.add_argument("--only", nargs="*", help="run names (default: all)")
    p.add_argument("--first", nargs="*", help="run names that go before every other (e.g. the pair to ship)")
    p.add_argument("--commit", action="store_true", help="git-commit each stage's scores as it finishes")
    p.add_argument("--list", action="store_true")
    p.add_argument("--cooldown", nargs=3, metavar=("RUN", "STEPS", "COOLDOWN"),
                   help="branch RUN's constant-lr checkpoint at STEPS into a linear cool-down of COOLDOWN steps "
                        "(schedule.decay=wsd) and score its EMA and raw weights")
    p.add_argument("--splits", nargs="+", default=list(SPLITS), help="splits --cooldown scores")
    p.add_argument("--probe-train", action="store_true",
                   help="add the training-set probe to the finished stages that lack it (seconds per stage)")
    p.add_argument("--job", help=argparse.SUPPRESS)
    p.add_argument("--steps", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.list:
        results = Path(args.results)
        for run in study_runs():
            done = done_stages(results, run.name)
            curve = ", ".join(f"{s}: {val_psnr(r):.2f} dB" for s, r in sorted(done.items()))
            print(f"{run.name:42s} next={next_stage(run, done, args.converged_db, args.converged_split)}  {curve}")
        print(remaining_cost(Path(args.results)))
        return
    if args.probe_train:
        import torch

        torch.set_num_threads(args.threads)
        for line in probe_finished_stages(Path(args.work), Path(args.results), args.data):
            print(line, flush=True)
        if args.commit:
            commit(Path(args.results), "reproduction: the training-set probe of the finished stages")
        return
    check_data(args.data, args.config)  # every mode below trains
    if args.cooldown:
        import torch

        torch.set_num_threads(args.threads)
        name, steps, cooldown = args.cooldown[0], int(args.cooldown[1]), int(args.cooldown[2])
        run = next(r for r in study_runs() if r.name == name)
        rec = run_cooldown(run, steps, cooldown, Path(args.work), Path(args.results), args.data, tuple(args.splits),
                           args.config)
        print(json.dumps(rec, indent=2))
        if args.commit:
            commit(Path(args.results), f"reproduction: {name} cooled down {steps}+{cooldown} (scores)")
        return
    if args.job:
        worker_setup(args.threads)  # its log: logs/<run>_step<N>.log
        run = next(r for r in study_runs() if r.name == args.job)
        lock = run_lock(Path(args.work), run, blocking=False)
        if lock is None:
            sys.exit(f"{run.name}: another process is training it")
        rec = run_stage(run, args.steps, Path(args.work), Path(args.results), args.data, args.config)
        print(json.dumps(rec, indent=2))
        return
    schedule(args)


if __name__ == "__main__":
    main()
