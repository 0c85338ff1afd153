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

**The trained phase** (issue 44, ``--phase trained``): ``configs/scenes32_fast.yaml`` (the speedrun's recipe) on
``data/scenes25k``, two threads per run, scores in ``docs/results/scenes/trained/runs/``. Each run climbs a ladder of
budgets 1000 * 2^k steps, scored at every rung (PSNR, SSIM, LPIPS, the train probe), until its val PSNR gains less
than ``PLATEAU_DB`` over the last doubling (plateau) or the next rung would pass ``--max-steps`` (the cap: about
``CAP_SECONDS`` of training at the measured s/step of the slower arm, the same for every run); rFID at that final
rung only. The score file's ``plateau`` says which. Runs: both arms at N = 1, 2, 4, 8 (seeds 0-2 at N = 1 and 4,
0-1 at N = 2 and 8) and the text-placement ablation at N = 1 and 4, seeds 0-1 (text in the encoder only, the
decoder only, cross-attention instead of in-context tokens; "both" is the main TexTok run, "none" the baseline).

    python -m studies.scenes.run --phase trained --list              # runs, rungs done, plateau status, estimate
    python -m studies.scenes.run --phase trained --runs 'textok-n1-*' baseline-n1-s0
"""

from __future__ import annotations

import argparse
import dataclasses
import fnmatch
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

from typing import Callable

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


# ---- the trained phase (issue 44) --------------------------------------------------------------
# Where the text goes (the paper's ablation), TexTok runs named <main run>-<suffix>; "both" is the main run and
# "none" the baseline (model.text_in=none data.caption_dropout=0.0), so they are not run twice.
PLACEMENTS = {"text-encoder": ("model.text_in=encoder",), "text-decoder": ("model.text_in=decoder",),
              "cross-attention": ("model.text_conditioning=cross-attention",)}
PLACEMENT_SEEDS = (0, 1)


def trained_runs() -> list[Run]:
    """The trained phase's runs, in the order the scheduler starts them (what the verdict needs first): both arms at
    N = 1 (seeds 0-2), at N = 4 (seeds 0-2), the placement ablation at N = 1 and 4 (seeds 0-1), then N = 2 and 8
    (seeds 0-1). Every run is scored at every rung of the ladder (its learning curve)."""
    def pair(n: int, seeds: tuple[int, ...]) -> list[Run]:
        return [Run(f"{arm}-n{n}-s{s}", arm, n, seed=s, group="main" if s == 0 else "seeds")
                for s in seeds for arm in ("textok", "baseline")]

    runs = pair(1, (0, 1, 2)) + pair(4, (0, 1, 2))
    runs += [Run(f"textok-n{n}-s{s}-{suffix}", "textok", n, seed=s, group="placement", overrides=o)
             for n in (1, 4) for s in PLACEMENT_SEEDS for suffix, o in PLACEMENTS.items()]
    return runs + pair(2, (0, 1)) + pair(8, (0, 1))


LADDER_START = 1000  # the ladder's budgets: LADDER_START * 2^k steps
PLATEAU_DB = 0.2  # plateau: val PSNR gains less than this over the last doubling of steps (the rule)
CAP_SECONDS = 2 * 3600.0  # the cap: about this much training per run on the study machine


def next_rung(steps: int | None) -> int:
    """The smallest ladder budget above ``steps`` (the first, LADDER_START, when None)."""
    rung = LADDER_START
    while steps is not None and rung <= steps:
        rung *= 2
    return rung


def ladder_status(record: dict, max_steps: int, threshold_db: float | None = None) -> dict:
    """The plateau rule on a score record (``budgets``: steps -> scores): ``status`` is "plateau" when the newest
    scored budget's val PSNR gained less than ``threshold_db`` over the budget half as long, "cap" when the next rung
    would pass ``max_steps``, else "training"; ``final`` the budget the run is reported at (None while training),
    ``next`` the rung to train to (None when final); ``gains``: val PSNR gain (dB) of each budget over its half.
    Budgets below the newest scored are never pending (training does not go back). A drop right after a climb (the
    newest gain negative, the doubling before it at least ``threshold_db``) is a dip, not a plateau: the run climbs
    one more rung (baseline-n8-s0 fell 0.30 dB at 4,000 steps after gaining 2.39 at 2,000). ``threshold_db``:
    PLATEAU_DB when None."""
    threshold_db = PLATEAU_DB if threshold_db is None else threshold_db
    psnr = {int(b): v["val"]["psnr"] for b, v in record.get("budgets", {}).items()}
    newest = max(psnr, default=None)
    gains = {b: psnr[b] - psnr[b // 2] for b in sorted(psnr) if b % 2 == 0 and b // 2 in psnr}
    last = gains.get(newest)  # None before the first doubling
    dip = last is not None and last < 0 and gains.get(newest // 2, -math.inf) >= threshold_db  # after a climb
    if last is not None and last < threshold_db and not dip:
        status = "plateau"
    elif next_rung(newest) > max_steps:
        status = "cap"
    else:
        status = "training"
    final = None if status == "training" else newest
    return {"rule": f"val PSNR gain < {threshold_db} dB per doubling of steps (a drop right after a gain of at least "
                    f"{threshold_db} dB is a dip: one more rung), budgets {LADDER_START} * 2^k, "
                    f"at most {max_steps} steps", "threshold_db": threshold_db, "max_steps": max_steps,
            "status": status, "final": final, "next": next_rung(newest) if status == "training" else None,
            "gains": {str(b): round(g, 4) for b, g in gains.items()}}


def recorded_status(record: dict, max_steps: int) -> dict:
    """The ladder status the driver recorded in a score record (``plateau``: written with every rung it scores), else
    ``ladder_status`` under ``max_steps`` (a record scored before the ladder, e.g. by the first phase's driver)."""
    return record.get("plateau") or ladder_status(record, max_steps)


@dataclasses.dataclass(frozen=True)
class Phase:
    """A phase of the study: its recipe, data, runs, where its scores and work go, and how budgets are chosen
    (``ladder``: the plateau ladder; else the fixed budgets of ``--steps``)."""

    name: str
    config: Path
    data: str
    fetch_args: str  # what `textok data fetch scenes --root DATA` needs besides the root
    results: Path
    work: Path
    threads: int  # per run
    ladder: bool
    runs: Callable[[], list[Run]]
    prior_seconds_per_step: dict[str, float]


_CACHE = Path.home() / ".cache" / "textok" / "studies"
PHASES = {
    "first": Phase("first", CONFIG, DATA, "", RESULTS, WORK, 1, False, study_runs, PRIOR_SECONDS_PER_STEP),
    # $TEXTOK_SCENES_WORK/trained, not the first phase's folder itself: both phases name runs textok-n1-s0, and a
    # run resumes whatever checkpoint its folder holds. Priors: the speedrun's scenes32_fast runs (2 threads, AMD
    # EPYC; docs/results/speedrun.md): TexTok N = 1 0.137-0.147 s/step, the baseline at N = 8 0.099 s/step.
    "trained": Phase("trained", REPO / "configs" / "scenes32_fast.yaml", "data/scenes25k", "--count 25000 --size 32",
                     RESULTS.parent / "trained" / "runs",
                     Path(os.environ["TEXTOK_SCENES_WORK"]) / "trained" if os.environ.get("TEXTOK_SCENES_WORK")
                     else _CACHE / "scenes-trained", 2, True, trained_runs, {"textok": 0.14, "baseline": 0.10}),
}


@dataclasses.dataclass(frozen=True)
class Plan:
    """What a call trains to: the fixed budgets of ``steps`` (its final budget; /4 and /2 too for curve runs), or,
    when ``max_steps`` is set, the plateau ladder up to ``max_steps`` under the rule's ``plateau_db`` (PLATEAU_DB
    when None; -inf: climb to the cap, e.g. to test whether a plateau holds)."""

    steps: int | None = None
    max_steps: int | None = None
    plateau_db: float | None = None

    @property
    def ladder(self) -> bool:
        return self.max_steps is not None

    def status(self, results: Path, run: Run | str) -> dict | None:
        """The run's ladder status (None for fixed budgets)."""
        return ladder_status(load_scores(results, run), self.max_steps, self.plateau_db) if self.ladder else None

    def pending(self, results: Path, run: Run) -> list[int]:
        """The budgets still to train and score (on the ladder: the next rung, if any; one at a time, since
        each rung's score decides whether there is another)."""
        if not self.ladder:
            return pending_budgets(results, run, self.steps)
        nxt = self.status(results, run)["next"]
        return [] if nxt is None else [nxt]

    def final(self, results: Path, run: Run | str) -> int | None:
        """The budget the run is reported at, with rFID (on the ladder: None until plateau or cap)."""
        return self.status(results, run)["final"] if self.ladder else self.steps


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


def missing_rfid(results: Path, run: Run | str, steps: int | None, rfid_splits: tuple[str, ...] = SPLITS) -> list[str]:
    """The ``rfid_splits`` whose rFID the run's scored final budget ``steps`` lacks (an earlier ``--rfid-splits`` left
    it out, or the ladder scored it before it knew the budget was final); none when ``steps`` is None or unscored."""
    final = load_scores(results, run).get("budgets", {}).get(str(steps))
    return [s for s in rfid_splits if final is not None and final[s].get("rfid") is None]


def is_pending(results: Path, run: Run, plan: Plan, rfid_splits: tuple[str, ...] = SPLITS) -> bool:
    return bool(plan.pending(results, run) or missing_rfid(results, run, plan.final(results, run), rfid_splits))


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


def run_job(run: Run, plan: Plan, work: Path, results: Path, data: str, config: Path = CONFIG,
            device: str = "cpu", extra: tuple[str, ...] = (), eval_num: int | None = EVAL_NUM,
            rfid_splits: tuple[str, ...] = SPLITS) -> dict:
    """Train ``run`` through each pending budget of ``plan`` and score it there (rFID at the final budget only, on
    ``rfid_splits``: earlier budgets get PSNR / SSIM / LPIPS; on the ladder a rung found final by its own score gets
    its rFID from the stage model afterwards, ``fill_rfid``); returns the run's score record, which on the ladder
    holds the plateau status (``plateau``: ``ladder_status``). ``extra``: config overrides for every run (tests: a
    tiny model); ``eval_num``: images scored per split (all when None)."""
    from textok.io import write_json_atomic

    held = lock(work, run.name, blocking=False)
    if held is None:
        raise SystemExit(f"{run.name}: another process holds {work / 'locks' / (run.name + '.lock')}")
    try:
        while pending := plan.pending(results, run):
            train_and_score(run, pending[0], plan, work, results, data, config, device, extra, eval_num, rfid_splits)
        record = load_scores(results, run)
        if plan.ladder and record and record.get("plateau") != plan.status(results, run):
            record["plateau"] = plan.status(results, run)  # a record scored before the ladder existed, or a new cap
            write_json_atomic(score_file(results, run), record)
        fill_rfid(run, plan.final(results, run), work, results, data, device, rfid_splits)
        return load_scores(results, run)
    finally:
        held.close()


def train_and_score(run: Run, budget: int, plan: Plan, work: Path, results: Path, data: str, config: Path,
                    device: str, extra: tuple[str, ...], eval_num: int | None, rfid_splits: tuple[str, ...]) -> None:
    """Train ``run`` to ``budget`` steps (resuming its last checkpoint), keep the model as the budget's stage and
    score it into the run's score file (rFID when ``plan`` knows the budget is final; on the ladder, the plateau
    status after it)."""
    import torch

    from textok.config import to_dict
    from textok.io import copy_dir_atomic, write_json_atomic
    from textok.training import TokenizerTask, Trainer, cpu_name, load_config
    from textok.training.checkpoint import latest_checkpoint

    out = work / "runs" / run.name
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
    # on the ladder a rung is known to be final beforehand only when the next would pass the cap
    final = next_rung(budget) > plan.max_steps if plan.ladder else budget == plan.steps
    scores = score(run, stage, work, data, cfg.model.image_size, device, eval_num, rfid=final,
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
    if plan.ladder:
        record["plateau"] = ladder_status(record, plan.max_steps, plan.plateau_db)
    write_json_atomic(score_file(results, run), record)
    v = scores["val"]
    rfid = "-" if v["rfid"] is None else f"{v['rfid']:.1f}"
    print(f"[scenes] {run.name} @ {budget}: val PSNR {v['psnr']:.2f} rFID {rfid} | compositional PSNR "
          f"{scores['val_compositional']['psnr']:.2f} | train probe {scores['train_probe']['psnr']:.2f} "
          f"({total / budget:.3f} s/step)", flush=True)


def fill_rfid(run: Run, steps: int | None, work: Path, results: Path, data: str, device: str = "cpu",
              rfid_splits: tuple[str, ...] = SPLITS) -> None:
    """Add the rFID a finished run's final budget ``steps`` lacks on ``rfid_splits`` (none: not final yet), from its
    stage model (no training).

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


def missing_data(data: str, runs: list[Run], fetch_args: str = "") -> list[str]:
    """The commands that would make ``data`` ready for ``runs`` (none when it is); ``fetch_args``: what the fetch
    command needs besides the root (``--count 25000 --size 32``)."""
    from textok.data.text_cache import load_text_cache

    root = Path(data)
    if not (root / "captions.jsonl").is_file():
        cmds = [f"textok data fetch scenes --root {data}" + (f" {fetch_args}" if fetch_args else "")]
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
def seconds_per_step(results: Path, phase: Phase = PHASES["first"]) -> tuple[dict[str, float], float, str]:
    """Per arm: the median measured s/step of ``phase``'s scored budgets on a CPU at its threads per run (else the
    phase's prior), the seconds per scored budget, and where the numbers come from."""
    rates: dict[str, list[float]] = {"textok": [], "baseline": []}
    evals = []
    for run in phase.runs():
        for b in load_scores(results, run).get("budgets", {}).values():
            if b.get("device", "cpu") == "cpu" and b.get("threads") == phase.threads:
                rates[run.arm].append(b["seconds_per_step"])
            evals.append(sum(b[s]["eval_seconds"] for s in (*SPLITS, "train_probe")))
    median = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    per_step = {arm: median(xs) if xs else phase.prior_seconds_per_step[arm] for arm, xs in rates.items()}
    source = "measured" if rates["textok"] and rates["baseline"] else "prior (see run.py)"
    return per_step, (median(evals) if evals else PRIOR_EVAL_SECONDS), source


def default_max_steps(results: Path, phase: Phase) -> int:
    """The ladder's cap: the steps CAP_SECONDS of training buys at the slower arm's s/step (``seconds_per_step``),
    the same for every run, so that both arms of a pair may climb as far."""
    return int(CAP_SECONDS / max(seconds_per_step(results, phase)[0].values()))


def estimate(runs: list[Run], results: Path, plan: Plan, workers: int, phase: Phase = PHASES["first"]) -> str:
    per_step, per_eval, source = seconds_per_step(results, phase)
    rates = (f"{source}: {per_step['textok']:.3f} s/step TexTok, {per_step['baseline']:.3f} s/step baseline, "
             f"{per_eval:.0f} s per scored budget, {phase.threads} thread(s) per run")
    if plan.ladder:  # a run may stop at its next rung (plateau) or climb to the cap: both bounds
        low = high = 0.0
        top = max((r for r in (next_rung(None) * 2 ** k for k in range(32)) if r <= plan.max_steps), default=0)
        for run in runs:
            nxt = plan.status(results, run)["next"]
            if nxt is None:
                continue
            have = max(done_budgets(results, run), default=0)
            low += (nxt - have) * per_step[run.arm] + per_eval
            high += (top - have) * per_step[run.arm] + per_eval * (top // nxt).bit_length()
        return (f"estimate ({rates}): {low / 3600:.1f} h if every run stops at its next rung, {high / 3600:.1f} h if "
                f"every run climbs to the cap ({plan.max_steps} steps: its last rung {top}); / {workers} worker(s)")
    train = evals = 0.0
    for run in runs:
        pending = plan.pending(results, run)
        if pending:
            have = max((s for s in done_budgets(results, run) if s < max(pending)), default=0)
            train += (max(pending) - have) * per_step[run.arm]
            evals += len(pending) * per_eval
    total = train + evals
    return (f"estimate ({rates}): training {train / 3600:.1f} + scoring {evals / 3600:.1f} hours of one run = "
            f"{total / 3600:.1f} h, ~{total / 3600 / workers:.1f} h wall with {workers} worker(s)")


def describe_status(status: dict) -> str:
    """A ladder status in words: "plateau at 8000 (+0.12 dB)", "cap at 32000 (+0.41 dB)", "next 16000 (...)"."""
    done = [int(b) for b in status["gains"]]
    last = f"{status['gains'][str(max(done))]:+.2f} dB over the last doubling" if done else "no doubling yet"
    if status["status"] == "training":
        return f"next rung {status['next']} ({last})"
    return f"{status['status']} at {status['final']} ({last})"


def listing(runs: list[Run], results: Path, plan: Plan) -> str:
    lines = []
    for run in runs:
        rec = load_scores(results, run)
        done = sorted(int(s) for s in rec.get("budgets", {}))
        last = rec["budgets"][str(done[-1])] if done else None
        score = (f"val PSNR {last['val']['psnr']:.2f}, compositional {last['val_compositional']['psnr']:.2f}"
                 if last else "")
        no_rfid = missing_rfid(results, run, plan.final(results, run))
        score += f" (no rFID on {', '.join(no_rfid)})" if no_rfid else ""
        state = (describe_status(plan.status(results, run)) if plan.ladder
                 else f"pending {plan.pending(results, run) or '-'}")
        lines.append(f"  {run.name:32s} {run.group:9s} done {done or '-'} {state} {score}")
    return "\n".join(lines)


# ---- the scheduler -----------------------------------------------------------------------------
def schedule(runs: list[Run], args, phase: Phase, plan: Plan) -> int:
    work, results = Path(args.work).resolve(), Path(args.results).resolve()
    todo = [r for r in runs if is_pending(results, r, plan, tuple(args.rfid_splits))]
    print(estimate(todo, results, plan, args.workers, phase), flush=True)
    budget = ["--max-steps", str(plan.max_steps)] if plan.ladder else ["--steps", str(plan.steps)]
    if plan.plateau_db is not None:
        budget.append(f"--plateau-db={plan.plateau_db}")  # "=": argparse reads a lone "-inf" as an option
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
            cmd = module_command("studies.scenes.run", "--job", run.name, "--phase", phase.name, *budget,
                                 "--threads", str(args.threads), "--work", str(work), "--results", str(results),
                                 "--data", args.data, "--config", str(args.config), "--device", args.device,
                                 "--eval-num", str(args.eval_num), "--rfid-splits", *args.rfid_splits,
                                 *[f"--override={o}" for o in args.override])
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
    p.add_argument("--phase", choices=list(PHASES), default="first",
                   help="first: the issue-36 runs (fixed budgets); trained: the plateau ladder (issue 44)")
    p.add_argument("--runs", nargs="*", default=None, help="run names or globs (default: all)")
    p.add_argument("--steps", type=int, default=None,
                   help=f"first phase: final budget (default {STEPS}); curves at /4 and /2")
    p.add_argument("--max-steps", type=int, default=None,
                   help=f"trained phase: the ladder's cap (default: {CAP_SECONDS / 3600:g} h of training at the "
                        "slower arm's measured s/step)")
    p.add_argument("--workers", type=int, default=1, help="runs side by side, each a subprocess")
    p.add_argument("--threads", type=int, default=None,
                   help="threads per run (default: the phase's: first 1, trained 2)")
    p.add_argument("--data", default=None, help="the scenes data set (default: the phase's)")
    p.add_argument("--config", type=Path, default=None, help="the recipe (default: the phase's)")
    p.add_argument("--work", type=Path, default=None,
                   help="checkpoints, stage models, logs, outside the repository (default: the phase's)")
    p.add_argument("--results", type=Path, default=None, help="the score files' folder (default: the phase's)")
    p.add_argument("--device", default="cpu", help="scoring device (training: accelerate picks the GPU if any)")
    p.add_argument("--override", action="append", default=[], help="config override for every run (tests)")
    p.add_argument("--plateau-db", type=float, default=None,
                   help=f"the plateau rule's threshold (default {PLATEAU_DB} dB per doubling; -inf: climb to the cap)")
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
    phase = PHASES[args.phase]
    for key in ("threads", "data", "config", "work", "results"):
        if getattr(args, key) is None:
            setattr(args, key, getattr(phase, key))
    if phase.ladder:
        if args.steps is not None:
            raise SystemExit("--steps: the trained phase picks its budgets (the plateau ladder); "
                             "cap it with --max-steps")
        max_steps = args.max_steps or default_max_steps(args.results, phase)
        if max_steps < LADDER_START:
            raise SystemExit(f"--max-steps {max_steps}: below the ladder's first rung, {LADDER_START}")
        plan = Plan(max_steps=max_steps, plateau_db=args.plateau_db)
    else:
        if args.max_steps is not None or args.plateau_db is not None:
            raise SystemExit("--max-steps, --plateau-db: only the trained phase has a ladder; the first phase takes "
                             "--steps")
        plan = Plan(steps=args.steps or STEPS)
    runs = select(phase.runs(), args.runs)
    if args.job:
        run = next((r for r in phase.runs() if r.name == args.job), None)
        if run is None:
            raise SystemExit(f"--job {args.job}: no such run in the {phase.name} phase")
        worker_setup(args.threads)
        run_job(run, plan, args.work.resolve(), args.results.resolve(), args.data, args.config, args.device,
                tuple(args.override), args.eval_num or None, tuple(args.rfid_splits))
        return 0
    if args.list:
        print(listing(runs, args.results, plan))
        print(estimate(runs, args.results, plan, args.workers, phase))
        return 0
    missing = missing_data(args.data, runs, phase.fetch_args if args.data == phase.data else "")
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
    return schedule(runs, args, phase, plan)


if __name__ == "__main__":
    sys.exit(main())
