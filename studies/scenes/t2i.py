"""Text-to-image on the trained scenes tokenizers (issue 44, point 4): does a TexTok tokenizer make a DiT follow
its prompt better than the no-text baseline at the same token count?

For one pair of tokenizer stage models (``--tokenizer textok=<stage> --tokenizer baseline=<stage>``, or resolved
from the study's run names: ``--num-tokens 1`` takes ``<study-work>/stages/{textok,baseline}-n1-s0/`` at the
largest step both reached) and each arm:

1. the train split's tokens are cached (``textok.latents.encode_dataset``, resumable);
2. DiT-T2I with classifier-free guidance (caption dropout) is trained on them, ``configs/dit_t2i_scenes32.yaml``:
   the same DiT size and budget for both arms, ``--dit-seeds`` (0 and 1) per arm;
3. one sample per caption of ``val`` and of ``val_compositional`` (``--num``, default all 1,000 of each, in the
   split's order) with each of ``--samplers`` (the many-step and a few-step sampler of the DiT's objective,
   ``sampler:steps``: DDIM 50 and 8 by default) at guidance ``--cfg``. ``--objective meanflow`` trains MeanFlow
   DiTs instead (guidance trained in; the project's one-step sampler), under ``<name>-meanflow``;
4. scored: adherence per factor and exact (``textok.metrics.scenes.score_adherence``: the caption read back by a
   detector), and gFID of the first ``--gfid-num`` samples against the Inception statistics of all the split's
   real renders (cached in the work folder).

The ceiling (the real renders of each split, read by the same detector) and the floor (each scene against
another scene's caption, ``textok.metrics.scenes.chance``) go to ``<results>/ceiling_floor.json``. Per tokenizer,
``detokenizer_control`` (in DiT seed 0's file): real tokens of other scenes decoded with the split's captions, the
adherence the detokenizer reaches with no help from the DiT (TexTok's reads the caption; the baseline's cannot).
``--sweep`` scores DiT seed 0 of both arms at each of ``--sweep-scales`` (adherence on ``val``; gFID too with
``--sweep-gfid``).

Idempotent and resumable: one score file per DiT run, ``<results>/<name>-<arm>-d<seed>.json``
(``docs/results/scenes/trained/t2i/`` by default), filled entry by entry (a finished entry is skipped; a stopped
DiT resumes from its checkpoint); the caches, DiTs and samples live in ``--work``
(``$TEXTOK_SCENES_WORK/t2i``, else ``~/.cache/textok/studies/scenes-trained/t2i``). ``generation_section``
writes the report's markdown (seed means, Welch p between the arms, ceiling and floor rows) and the grid of
samples with their captions (both arms, the same captions).

    python -m studies.scenes.t2i --num-tokens 1 --study-work /work/scenes-trained     # both arms, 2 DiT seeds
    python -m studies.scenes.t2i --tokenizer textok=<stage> --tokenizer baseline=<stage> --name n1
    python -m studies.scenes.t2i --num-tokens 1 --study-work /work/scenes-trained --sweep --sweep-scales 1,2,3,5
    python -m studies.scenes.t2i --num-tokens 1 --study-work /work/scenes-trained --objective meanflow  # 1-step DiTs
    python -m studies.scenes.t2i --list
    python -m studies.scenes.t2i --num-tokens 1 --study-work W --config configs/dit_t2i_scenes32_tiny.yaml \\
        --num 16 --gfid-num 0 --train-images 256 --work /tmp/t2i --results /tmp/t2ir   # smoke
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from ..common import commit_scores, flock, git_commit
from ..stats import fmt, fmt_p, mean_std, pm, welch_p
from .run import WORK as STUDY_WORK

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "configs" / "dit_t2i_scenes32.yaml"
RESULTS = REPO / "docs" / "results" / "scenes" / "trained" / "t2i"
WORK = (Path(os.environ["TEXTOK_SCENES_WORK"]) / "t2i" if os.environ.get("TEXTOK_SCENES_WORK")
        else Path.home() / ".cache" / "textok" / "studies" / "scenes-trained" / "t2i")
DATA = "data/scenes25k"
SPLITS = ("val", "val_compositional")
ARMS = ("textok", "baseline")
#: per DiT objective (``--objective``; the config overrides are studies/emoji32/few_step.py's): its many-step
#: sampler (DDIM 50 as the emoji study samples; Euler 50) and a few-step one (DDIM 8, Heun 4, MeanFlow 1 and 4)
SAMPLERS = {"gaussian": "ddim:50,ddim:8", "flow": "euler:50,heun:4", "meanflow": "meanflow:4,meanflow:1",
            "meanflow_w1": "meanflow:4,meanflow:1"}
SWEEP_SCALES = "1,1.5,2,3,4,6"
CEILING_FLOOR = "ceiling_floor.json"
FEATURES = None  # the Inception network (None: loaded once when first needed); tests put a stand-in here


@dataclasses.dataclass(frozen=True)
class Sampler:
    """A sampler of the DiT's objective at a step count (``"ddim:50"``)."""

    name: str
    steps: int

    @property
    def key(self) -> str:
        return f"{self.name}{self.steps}"

    @classmethod
    def parse(cls, text: str) -> "Sampler":
        name, _, steps = text.partition(":")
        if not name or not steps.isdigit() or int(steps) < 1:
            raise SystemExit(f"--samplers: {text!r} is not sampler:steps (e.g. ddim:50)")
        return cls(name, int(steps))


def entry_key(split: str, sampler: Sampler, cfg: float) -> str:
    """The score file's key of one sample set: ``val/ddim50/cfg3``."""
    return f"{split}/{sampler.key}/cfg{cfg:g}"


def run_name(name: str, arm: str, dit_seed: int) -> str:
    return f"{name}-{arm}-d{dit_seed}"


# ---- the tokenizers ----------------------------------------------------------------------------
def parse_tokenizers(items: list[str]) -> dict[str, Path]:
    """``["textok=<stage>", "baseline=<stage>"]`` -> arm -> stage folder (config.json + model.safetensors)."""
    out = {}
    for item in items:
        arm, sep, path = item.partition("=")
        if not sep or arm not in ARMS:
            raise SystemExit(f"--tokenizer {item!r}: give ARM=STAGE with ARM one of {', '.join(ARMS)}")
        out[arm] = check_stage(Path(path), f"--tokenizer {arm}")
    return out


def check_stage(path: Path, what: str) -> Path:
    for f in ("config.json", "model.safetensors"):
        if not (path / f).is_file():
            raise SystemExit(f"{what}: {path} holds no {f} (a tokenizer stage folder: config.json + model.safetensors)")
    return path


def study_stages(study_work: Path, num_tokens: int, steps: int | None = None, seed: int = 0) -> dict[str, Path]:
    """arm -> the stage model of the study's run ``<arm>-n<N>-s<seed>`` in ``study_work/stages``: at ``steps``, or
    at the largest step both arms reached (the tokenizers are compared at equal steps)."""
    runs = {arm: f"{arm}-n{num_tokens}-s{seed}" for arm in ARMS}
    done = {arm: {int(p.name[5:]) for p in (study_work / "stages" / run).glob("step_*")
                  if (p / "model.safetensors").is_file()} for arm, run in runs.items()}
    common = set.intersection(*done.values())
    if steps is None:
        if not common:
            raise SystemExit(f"{' and '.join(runs.values())}: no stage both reached in {study_work / 'stages'} "
                             f"(reached: {', '.join(f'{r} {sorted(done[a]) or None}' for a, r in runs.items())})")
        steps = max(common)
    return {arm: check_stage(study_work / "stages" / run / f"step_{steps:07d}", run) for arm, run in runs.items()}


def stage_label(stage: Path) -> str:
    """``textok-n1-s0@8000`` for a study stage folder, else the folder's path."""
    if stage.name.startswith("step_") and stage.name[5:].isdigit():
        return f"{stage.parent.name}@{int(stage.name[5:])}"
    return str(stage)


# ---- the pipeline ------------------------------------------------------------------------------
def token_cache(stage: Path, data: Path, work: Path, max_images: int | None = None) -> Path:
    """The train split's tokens by ``stage`` (``encode_dataset``: resumes an interrupted cache, refuses one made by
    other weights), in ``work/latents/<stage label>``; ``max_images``: an evenly spread subset (smoke runs)."""
    from textok.latents import encode_dataset

    label = stage_label(stage).strip("/").replace("/", "_").replace("@", "_step")
    out = work / "latents" / (label + (f"_{max_images}" if max_images else ""))
    if not (out / "stats.json").is_file():  # written last: a finished cache
        print(f"[t2i] encode {data} train with {stage} -> {out}", flush=True)
        encode_dataset(stage, data, out, split="train", max_images=max_images, progress=False)
    return out


def train(dit: Path, cache: Path, stage: Path, config: Path, seed: int, overrides: list[str]) -> dict:
    """Train (or resume, or skip when finished) the DiT-T2I in ``dit``; returns what the score file records of it."""
    import torch

    from textok.training.dit_task import load_dit_config, train_dit

    from ..emoji32.reproduction_generation import finished, record_device

    cfg = load_dit_config(config, [f"data.cache={cache}", f"data.tokenizer={stage}", f"seed={seed}",
                                   "logging.progress=false", *overrides])
    steps = cfg.schedule.max_steps
    if not finished(dit, steps):
        print(f"[t2i] train {dit.name}: {steps} steps ({config.name})", flush=True)
        train_dit(cfg, dit, resume=(dit / "checkpoints").is_dir())
        record_device(dit, steps)
    summary = json.loads((dit / "train_summary.json").read_text())
    on = json.loads((dit / "trained_on.json").read_text()).get(str(steps), {}) \
        if (dit / "trained_on.json").is_file() else {}
    seconds = summary.get("total_seconds", summary.get("seconds"))
    return {"config": config.name, "overrides": overrides, "steps": steps, "seed": seed, "seconds": seconds,
            "seconds_per_step": round(seconds / steps, 4) if seconds else None, "device": on.get("device"),
            "threads": torch.get_num_threads(), "final_loss": summary.get("last_logs", {}).get("loss")}


def split_entries(data: Path, split: str, num: int | None) -> tuple[list[dict], int]:
    from textok.metrics.scenes import load_entries

    return load_entries(data, split, num)


def draw(model: Path, data: Path, entries: list[dict], sampler: Sampler, cfg: float, out: Path,
         batch_size: int) -> np.ndarray:
    """One sample per caption of ``entries`` (in order; sampling seed 0), kept in ``out`` (.npz; resumable batch by
    batch): uint8 [N, S, S, 3]."""
    from textok.generation import sample_fid
    from textok.metrics import load_images_npz

    if not out.is_file():
        sample_fid(model, len(entries), out, prompts=[e["caption"] for e in entries], cfg_scale=cfg,
                   steps=sampler.steps, sampler=sampler.name, seed=0, batch_size=batch_size, progress=False,
                   device="cpu", text_data=data)
    return load_images_npz(out)


def features():
    """The Inception network, loaded once (``FEATURES``)."""
    global FEATURES
    if FEATURES is None:
        from textok.metrics import InceptionFeatures

        FEATURES = InceptionFeatures()
    return FEATURES


def gfid(images: np.ndarray, work: Path, data: Path, split: str, size: int) -> dict:
    """gFID of ``images`` against the Inception statistics of every real render of ``split`` (computed once)."""
    from textok.metrics import evaluate_generation

    from . import run as study

    saved, study.FEATURES = study.FEATURES, features()  # the study's cached-reference helper reads its FEATURES
    try:
        ref = study.reference_stats(work, str(data), split, size)
    finally:
        study.FEATURES = saved
    t = time.perf_counter()
    r = evaluate_generation(images, ref, extractor=features(), progress=False)
    return {"num": r["num"], "ref_num": r["ref_num"], "gfid": r["gfid"], "precision": r["precision"],
            "recall": r["recall"], "seconds": round(time.perf_counter() - t, 1)}


def ceiling_floor(results: Path, data: Path, splits: tuple[str, ...], num: int | None) -> dict:
    """Per split: the detector's reading of the real renders against their own captions (the ceiling) and a
    perfect reader's rates with each scene paired with the next scene's caption (the floor), in
    ``results/ceiling_floor.json`` (computed once per split and image count)."""
    from textok.io import write_json_atomic
    from textok.metrics.scenes import chance, evaluate_adherence

    path = results / CEILING_FLOOR
    record = json.loads(path.read_text()) if path.is_file() else {}
    for split in splits:
        entries, _ = split_entries(data, split, num)
        if record.get(split, {}).get("num_images") == len(entries):
            continue
        t = time.perf_counter()
        real = evaluate_adherence(data / "images" / split, data, split, num=num)
        record[split] = {"num_images": len(entries), "ceiling": real["summary"], "floor": chance(entries, 1),
                         "seconds": round(time.perf_counter() - t, 1), "commit": git_commit()}
        write_json_atomic(path, record)
        print(f"[t2i] {split}: ceiling exact {real['summary']['images']['exact']:.3f}, floor exact "
              f"{record[split]['floor']['images']['exact']:.3f}", flush=True)
    return record


def detokenizer_control(stage: Path, cache: Path, data: Path, splits: tuple[str, ...], num: int | None,
                        batch_size: int = 250) -> dict:
    """What the detokenizer alone makes of a prompt: the real tokens of the first training scenes (other scenes,
    as a DiT that ignored the prompt perfectly would draw them) decoded with each caption of ``split``, read by the
    adherence detector: split -> summary. The baseline's detokenizer sees no caption (its floor); TexTok's reads it,
    so its DiTs' adherence is judged against this row, not against the floor."""
    import torch

    from textok.data.transforms import to_uint8
    from textok.latents import LatentCache
    from textok.metrics.scenes import score_adherence
    from textok.tokenizer import CaptionedTokenizer

    latents = LatentCache(cache)
    tok = CaptionedTokenizer.from_pretrained(stage, "cpu", data_root=data)
    out = {}
    for split in splits:
        entries, size = split_entries(data, split, num)
        if len(latents) < len(entries):
            raise SystemExit(f"{cache}: {len(latents)} cached token sets for {len(entries)} {split} captions")
        images = []
        with torch.no_grad():
            for lo in range(0, len(entries), batch_size):
                hi = min(len(entries), lo + batch_size)
                item = [latents[i] for i in range(lo, hi)]
                key = "tokens" if "tokens" in item[0] else "mean"
                tokens = torch.stack([x[key] for x in item]).float()
                images.append(to_uint8(tok.decode(tokens, [e["caption"] for e in entries[lo:hi]])))
        out[split] = score_adherence(np.concatenate(images), entries, size=size)["summary"]
    return out


@dataclasses.dataclass
class Plan:
    """What one invocation does (the CLI's options)."""

    name: str
    stages: dict[str, Path]
    data: Path
    work: Path
    results: Path
    config: Path = CONFIG
    overrides: tuple[str, ...] = ()
    dit_seeds: tuple[int, ...] = (0, 1)
    splits: tuple[str, ...] = SPLITS
    samplers: tuple[Sampler, ...] = tuple(Sampler.parse(s) for s in SAMPLERS["gaussian"].split(","))
    cfg: float | None = None  # None: the config's diffusion.cfg_scale
    num: int | None = None  # captions per split (None: all)
    gfid_num: int | None = None  # samples in the gFID (None: all drawn); 0: no gFID
    batch_size: int = 250
    train_images: int | None = None  # the DiT's training tokens: an evenly spread subset (None: the whole split)
    sweep_scales: tuple[float, ...] = ()
    sweep_gfid: bool = False
    commit: bool = False

    def guidance(self) -> float:
        if self.cfg is not None:
            return self.cfg
        from textok.training.dit_task import load_dit_config

        return float(load_dit_config(self.config, list(self.overrides)).diffusion.cfg_scale)


def score_entry(plan: Plan, model: Path, run: str, split: str, sampler: Sampler, cfg: float, with_gfid: bool,
                old: dict | None = None) -> dict | None:
    """Sample ``split``'s captions with ``sampler`` at guidance ``cfg`` and score them: adherence, and gFID of the
    first ``plan.gfid_num`` samples when ``with_gfid`` (and ``gfid_num`` is not 0). ``old``: the entry scored before;
    returns None when it holds all of that, or it with the gFID added from its kept samples."""
    from textok.metrics import load_images_npz
    from textok.metrics.scenes import score_adherence

    entries, size = split_entries(plan.data, split, plan.num)
    want_gfid = with_gfid and plan.gfid_num != 0
    k = min(plan.gfid_num or len(entries), len(entries))
    if old and old["num"] == len(entries):
        if not want_gfid or (old.get("gfid") or {}).get("num") == k:
            return None
        if Path(old["samples"]).is_file():  # only the gFID is missing (or of another count)
            return dict(old, gfid=gfid(load_images_npz(old["samples"])[:k], plan.work, plan.data, split, size))
    out = plan.work / plan.name / "samples" / f"{run}_{split}_{sampler.key}_cfg{cfg:g}_{len(entries)}.npz"
    t = time.perf_counter()
    images = draw(model, plan.data, entries, sampler, cfg, out, plan.batch_size)
    sampled = time.perf_counter() - t
    summary = score_adherence(images, entries, size=size)["summary"]
    entry = {"split": split, "sampler": sampler.name, "steps": sampler.steps, "cfg_scale": cfg, "num": len(entries),
             "adherence": summary, "samples": str(out), "sampling_seconds": round(sampled, 1), "gfid": None}
    if want_gfid:
        entry["gfid"] = gfid(images[:k], plan.work, plan.data, split, size)
    return entry


def run_dit(plan: Plan, arm: str, seed: int, sweep: bool = False) -> dict:
    """Train one DiT of ``arm`` with ``seed`` and fill its score file; returns the record."""
    import torch

    from textok.io import write_json_atomic
    from textok.training import cpu_name

    run = run_name(plan.name, arm, seed)
    path = plan.results / f"{run}.json"
    held = flock(plan.work / "locks" / f"{run}.lock", blocking=False)
    if held is None:
        raise SystemExit(f"{run}: held by another process (lock {plan.work / 'locks' / (run + '.lock')})")
    try:
        stage = plan.stages[arm]
        cache = token_cache(stage, plan.data, plan.work, plan.train_images)
        dit = plan.work / plan.name / f"dit_{arm}_d{seed}"
        trained = train(dit, cache, stage, plan.config, seed, list(plan.overrides))
        record = json.loads(path.read_text()) if path.is_file() else {}
        tok_cfg = json.loads((stage / "config.json").read_text())
        record.update({"kind": "scenes-t2i", "run": run, "name": plan.name, "arm": arm, "dit_seed": seed,
                       "num_tokens": tok_cfg.get("num_tokens"), "tokenizer": stage_label(stage),
                       "tokenizer_text_in": tok_cfg.get("text_in"), "data": str(plan.data), "dit": trained})
        record.setdefault("scores", {})
        record.setdefault("sweep", {})

        def save(entry: dict | None, where: dict, key: str) -> None:
            if entry is None:  # scored before
                return
            entry.update({"commit": git_commit(), "cpu": cpu_name(), "threads": torch.get_num_threads(),
                          "date": time.strftime("%Y-%m-%d")})
            where[key] = entry
            write_json_atomic(path, record)
            a = entry["adherence"]["images"]
            g = entry["gfid"]["gfid"] if entry["gfid"] else None
            print(f"[t2i] {run} {key}: exact {a['exact']:.3f} gFID {fmt(g)} ({entry['sampling_seconds']} s "
                  f"sampling)", flush=True)

        # the detokenizer alone, once per tokenizer (the first DiT seed's record holds it)
        control = record.setdefault("detokenizer_control", {}) if seed == plan.dit_seeds[0] else {}
        missing = [sp for sp in plan.splits if seed == plan.dit_seeds[0] and control.get(sp, {}).get(
            "num_images") != len(split_entries(plan.data, sp, plan.num)[0])]
        if missing:
            control.update(detokenizer_control(stage, cache, plan.data, tuple(missing), plan.num, plan.batch_size))
            write_json_atomic(path, record)
        cfg = plan.guidance()
        model = dit / "model"
        for split in plan.splits:
            for sampler in plan.samplers:
                key = entry_key(split, sampler, cfg)
                save(score_entry(plan, model, run, split, sampler, cfg, True, record["scores"].get(key)),
                     record["scores"], key)
        if sweep:  # DiT seed 0: adherence (and gFID) against the guidance scale, on val with the first sampler
            for scale in plan.sweep_scales:
                key = entry_key("val", plan.samplers[0], scale)
                save(score_entry(plan, model, run, "val", plan.samplers[0], scale, plan.sweep_gfid,
                                 record["sweep"].get(key)), record["sweep"], key)
        write_json_atomic(path, record)
        if plan.commit:
            commit_scores(path, f"scenes t2i: {run} scores", REPO, "t2i")
        return record
    finally:
        held.close()


def run_plan(plan: Plan) -> list[dict]:
    """Every DiT of ``plan`` (both arms, each seed), the ceiling and floor, and the sample grid."""
    plan.results.mkdir(parents=True, exist_ok=True)
    ceiling_floor(plan.results, plan.data, plan.splits, plan.num)
    records = []
    for seed in plan.dit_seeds:  # seed 0 of both arms first: the pair the grid and the sweep need
        for arm in ARMS:
            if arm in plan.stages:
                records.append(run_dit(plan, arm, seed, sweep=bool(plan.sweep_scales) and seed == plan.dit_seeds[0]))
    for split in plan.splits:
        sample_grid(plan.results, plan.name, split)
    return records


# ---- the report --------------------------------------------------------------------------------
def load_records(results: Path) -> list[dict]:
    """The DiT runs' score files in ``results`` (not the ceiling/floor file)."""
    out = []
    for p in sorted(Path(results).glob("*.json")):
        r = json.loads(p.read_text())
        if r.get("kind") == "scenes-t2i":
            out.append(r)
    return out


def sample_grid(results: Path, name: str, split: str, num: int = 8, scale: int = 3) -> Path | None:
    """``results/grid_<name>_<split>.png``: the first ``num`` captions of ``split``, sampled by DiT seed 0 of each
    arm with the first sampler of its scores (the same captions, the same sampler and guidance), each caption
    printed under its column; None until both arms have those samples."""
    from PIL import Image, ImageDraw, ImageFont

    from textok.io import atomic_path
    from textok.metrics import load_images_npz

    recs = {r["arm"]: r for r in load_records(results) if r["name"] == name and r["dit_seed"] == 0}
    if set(recs) != set(ARMS):
        return None
    keys = [k for k in recs["textok"]["scores"] if k.startswith(f"{split}/") and k in recs["baseline"]["scores"]]
    if not keys:
        return None
    entries = {arm: recs[arm]["scores"][keys[0]] for arm in ARMS}
    if not all(Path(e["samples"]).is_file() for e in entries.values()):
        return None
    images = {arm: load_images_npz(e["samples"])[:num] for arm, e in entries.items()}
    captions, _ = split_entries(Path(recs["textok"]["data"]), split, len(images["textok"]))
    n, s = len(captions), images["textok"].shape[1] * scale
    font = ImageFont.load_default()
    label_w, col_w, pad, line_h = 70, max(s, 120), 6, 11
    # captions wrapped to the column's width: ~6 px a character in the default font
    per_line = max(8, col_w // 6)
    wrapped = []
    for e in captions:
        words, lines, cur = e["caption"].split(), [], ""
        for w in words:
            if cur and len(cur) + 1 + len(w) > per_line:
                lines.append(cur)
                cur = w
            else:
                cur = f"{cur} {w}".strip()
        wrapped.append(lines + [cur])
    text_h = max(len(w) for w in wrapped) * line_h + pad
    grid = Image.new("RGB", (label_w + n * (col_w + pad), len(ARMS) * (s + pad) + text_h + pad), "white")
    draw = ImageDraw.Draw(grid)
    for row, arm in enumerate(ARMS):
        y = pad + row * (s + pad)
        draw.text((4, y + s // 2 - 5), arm, fill="black", font=font)
        for col in range(n):
            tile = Image.fromarray(images[arm][col]).resize((s, s), Image.NEAREST)
            grid.paste(tile, (label_w + col * (col_w + pad) + (col_w - s) // 2, y))
    y0 = pad + len(ARMS) * (s + pad)
    for col, lines in enumerate(wrapped):
        for i, line in enumerate(lines):
            draw.text((label_w + col * (col_w + pad), y0 + i * line_h), line, fill="black", font=font)
    out = results / f"grid_{name}_{split}.png"
    with atomic_path(out) as tmp:
        grid.save(tmp, format="PNG")
    return out


FACTOR_COLUMNS = ("exact", "background", "present", "colour", "shape", "size", "empty", "count")


def generation_summary(results_dir: str | os.PathLike = RESULTS) -> dict:
    """What the report's section shows, as data (for the report's JSON): ``rows``, one per pair (N, name), split,
    sampler and guidance, in table order, each with per arm the DiT seeds, every factor's rate over images and the
    gFID as [mean, std] over seeds (std None for one seed), and the Welch p between the arms of exact and of gFID;
    ``ceiling_floor`` (per split); ``sweep`` (DiT seed 0's rows); ``grids`` (file names); where the DiTs ran."""
    results = Path(results_dir)
    records = load_records(results)
    groups: dict[tuple, dict[str, list]] = {}
    info: dict[tuple, dict] = {}
    for r in records:
        for e in r["scores"].values():
            g = (r["num_tokens"], r["name"], e["split"], e["sampler"], e["steps"], e["cfg_scale"])
            groups.setdefault(g, {}).setdefault(r["arm"], []).append(e)
            toks = info.setdefault(g, {}).setdefault("tokenizers", {}).setdefault(r["arm"], [])
            if r["tokenizer"] not in toks:  # DiT seeds may sit on different tokenizer seeds
                toks.append(r["tokenizer"])
            info[g]["dit"] = f"{r['dit']['steps']} steps ({r['dit']['config']})"
    rows = []
    for g in sorted(groups, key=lambda g: (g[0], g[1], g[2], -g[4], g[5])):  # by N, split; many steps first
        n, name, split, sampler, steps, cfg = g
        arms, raw = {}, {}
        for arm in ARMS:
            es = groups[g].get(arm, [])
            if not es:
                continue
            gf = [e["gfid"]["gfid"] for e in es if e.get("gfid")]
            arms[arm] = {"dit_seeds": len(es), "gfid": list(mean_std(gf)),
                         "gfid_num": sorted({e["gfid"]["num"] for e in es if e.get("gfid")}),
                         "images": {f: list(mean_std([e["adherence"]["images"][f] for e in es]))
                                    for f in FACTOR_COLUMNS}}
            raw[arm] = ([e["adherence"]["images"]["exact"] for e in es], gf)
        p = {"exact": None, "gfid": None}
        if len(raw) == 2:
            p = {"exact": welch_p(raw["textok"][0], raw["baseline"][0]),
                 "gfid": welch_p(raw["textok"][1], raw["baseline"][1])}
        rows.append({"num_tokens": n, "name": name, "split": split, "sampler": sampler, "steps": steps,
                     "cfg_scale": cfg, "arms": arms, "welch_p": p, **info[g]})
    sweep = [{"num_tokens": r["num_tokens"], "name": r["name"], "arm": r["arm"], "split": e["split"],
              "sampler": e["sampler"], "steps": e["steps"], "cfg_scale": e["cfg_scale"],
              "images": e["adherence"]["images"], "gfid": e["gfid"]["gfid"] if e.get("gfid") else None}
             for r in records for e in r.get("sweep", {}).values()]
    sweep.sort(key=lambda x: (x["num_tokens"], x["name"], x["cfg_scale"], x["arm"]))
    # "N/name/split" -> "arm tokenizer" -> rates over images: the tokenizer's own, not a DiT's, so one row per
    # tokenizer (a pair's DiT seeds may sit on tokenizer seeds whose detokenizers differ)
    controls: dict[str, dict] = {}
    for r in records:
        for split, c in r.get("detokenizer_control", {}).items():
            key = f"{r['num_tokens']}/{r['name']}/{split}"
            controls.setdefault(key, {})[f"{r['arm']} {r['tokenizer']}"] = c["images"]
    cf = json.loads((results / CEILING_FLOOR).read_text()) if (results / CEILING_FLOOR).is_file() else {}
    return {"rows": rows, "ceiling_floor": cf, "detokenizer_control": controls, "sweep": sweep,
            "grids": [g.name for g in sorted(results.glob("grid_*.png"))],
            "dit_devices": sorted({str(r["dit"].get("device")) for r in records}),
            "commits": sorted({e.get("commit") or "?" for r in records for e in r["scores"].values()})}


def generation_section(results_dir: str | os.PathLike = RESULTS, relative_to: str | os.PathLike | None = None) -> str:
    """The report's text-to-image section (markdown) of ``generation_summary``: per pair (N), split, sampler and
    guidance, each arm's adherence per factor (% of images) and gFID as mean ± std over DiT seeds, the Welch p
    between the arms, and the ceiling and floor rows of the split; then the guidance sweep and the sample grids
    (linked relative to ``relative_to``, the markdown's folder; default ``results_dir``)."""
    results = Path(results_dir)
    base = Path(relative_to) if relative_to is not None else results
    summary = generation_summary(results)
    rows, cf = summary["rows"], summary["ceiling_floor"]
    if not rows:
        return ("## Text-to-image\n\nPending: no DiT has been scored yet (`python -m studies.scenes.t2i "
                "--num-tokens N --study-work <study work>`).\n")
    pct = lambda ms: pm(*(None if v is None else 100 * v for v in ms), 1)  # noqa: E731
    lines = ["## Text-to-image", "",
             "DiT-T2I (`configs/dit_t2i_scenes32.yaml`, the same size and budget for both arms) on each arm's "
             "tokens; one sample per caption of the split; adherence read back from the image by "
             "`textok.metrics.scenes` (% of images right per factor; *exact*: the whole scene), mean ± std over DiT "
             "seeds, p: Welch's t-test between the arms. gFID against all of the split's real renders. Ceiling: the "
             "real renders read by the same detector; floor: each scene judged against another scene's caption; "
             "*other scenes' tokens + caption*: the real tokens of training scenes decoded with the split's captions "
             "(the detokenizer alone: TexTok's reads the caption, so its DiTs are judged against this row; one row per "
             "tokenizer).", ""]
    head = "| N | split | sampler | guidance | arm | DiT seeds | " + " | ".join(FACTOR_COLUMNS) + " | gFID (samples) |"
    lines += [head, "|" + "---|" * (head.count("|") - 1)]
    for i, r in enumerate(rows):
        where = f"| {r['num_tokens']} | `{r['split']}` |"
        what = f"{where} {r['sampler']} {r['steps']} | {r['cfg_scale']:g} |"
        for arm, a in r["arms"].items():
            num = f" ({', '.join(map(str, a['gfid_num']))})" if a["gfid_num"] else ""
            lines.append(f"{what} {arm} | {a['dit_seeds']} | " + " | ".join(pct(a["images"][f]) for f in FACTOR_COLUMNS)
                         + f" | {pm(*a['gfid'], 1)}{num} |")
        if len(r["arms"]) == 2:
            lines.append(f"{what} p (TexTok vs baseline) | | {fmt_p(r['welch_p']['exact'])} | "
                         + " | ".join("" for _ in FACTOR_COLUMNS[1:]) + f" | {fmt_p(r['welch_p']['gfid'])} |")
        nxt = rows[i + 1] if i + 1 < len(rows) else None
        if r["split"] in cf and (nxt is None or (nxt["num_tokens"], nxt["name"], nxt["split"])
                                 != (r["num_tokens"], r["name"], r["split"])):  # after the split's last rows
            for row in ("ceiling", "floor"):
                lines.append(f"{where} {row} | | | | " + " | ".join(
                    fmt(100 * cf[r["split"]][row]["images"][f], 1) for f in FACTOR_COLUMNS) + " | |")
            control = summary["detokenizer_control"].get(f"{r['num_tokens']}/{r['name']}/{r['split']}", {})
            for arm, rates in sorted(control.items()):  # "textok textok-n1-s0@8000": one row per tokenizer
                lines.append(f"{where} other scenes' tokens + caption | | {arm} | | "
                             + " | ".join(fmt(100 * rates[f], 1) for f in FACTOR_COLUMNS) + " | |")
    pairs = sorted({(r["num_tokens"], r["name"], ", ".join(f"{a} {' + '.join(sorted(t))}"
                                                           for a, t in sorted(r["tokenizers"].items())),
                     r["dit"]) for r in rows})
    lines += ["", "Tokenizers and DiTs: "
              + "; ".join(f"N = {n} (`{name}`): {toks}, DiT {dit}" for n, name, toks, dit in pairs)
              + f". DiTs trained on {', '.join(summary['dit_devices'])}; commit(s) {', '.join(summary['commits'])}."]
    if summary["sweep"]:
        lines += ["", "### Guidance scale (DiT seed 0 of each arm)", "",
                  "| N | split | sampler | guidance | arm | exact | colour | shape | gFID |",
                  "|---|---|---|---:|---|---|---|---|---|"]
        for x in summary["sweep"]:
            a = x["images"]
            lines.append(f"| {x['num_tokens']} | `{x['split']}` | {x['sampler']} {x['steps']} | {x['cfg_scale']:g} | "
                         f"{x['arm']} | {fmt(100 * a['exact'], 1)} | {fmt(100 * a['colour'], 1)} | "
                         f"{fmt(100 * a['shape'], 1)} | {fmt(x['gfid'], 1)} |")
    if summary["grids"]:
        lines += ["", "Samples (DiT seed 0; top TexTok, bottom baseline; the caption under each column):", ""]
        lines += [f"![{Path(g).stem}]({os.path.relpath(results / g, base)})" for g in summary["grids"]]
    return "\n".join(lines) + "\n"


# ---- the command line --------------------------------------------------------------------------
def listing(results: Path) -> str:
    records = load_records(results)
    if not records:
        return f"no DiT scored in {results}"
    rows = []
    for r in records:
        rows.append(f"  {r['run']:24s} tokenizer {r['tokenizer']}  DiT {r['dit']['steps']} steps, "
                    f"{fmt(r['dit'].get('seconds'), 0)} s  scored: {', '.join(sorted(r['scores'])) or '-'}"
                    + (f"  sweep: {len(r['sweep'])}" if r.get("sweep") else ""))
    return "\n".join(rows)


def floats(text: str) -> tuple[float, ...]:
    return tuple(float(x) for x in text.split(",") if x)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tokenizer", action="append", default=[], metavar="ARM=STAGE",
                   help="a tokenizer stage folder per arm (textok=..., baseline=...)")
    p.add_argument("--num-tokens", type=int, default=None,
                   help="resolve both arms' stages from the study's runs <arm>-n<N>-s<seed> in --study-work")
    p.add_argument("--study-work", type=Path, default=STUDY_WORK,
                   help=f"the tokenizer study's work folder, its stages/ (default: studies/scenes/run.py's, "
                        f"{STUDY_WORK})")
    p.add_argument("--tokenizer-steps", type=int, default=None,
                   help="the stages' step (default: the largest both reached)")
    p.add_argument("--tokenizer-seed", type=int, default=0)
    p.add_argument("--name", default=None, help="the pair's name in file names (default n<N>)")
    p.add_argument("--data", type=Path, default=Path(DATA))
    p.add_argument("--work", type=Path, default=WORK, help="caches, DiTs, samples (outside the repository)")
    p.add_argument("--results", type=Path, default=RESULTS)
    p.add_argument("--config", type=Path, default=CONFIG)
    p.add_argument("--override", action="append", default=[], help="DiT config override (key=value)")
    p.add_argument("--dit-seeds", default="0,1")
    p.add_argument("--splits", nargs="+", default=list(SPLITS), choices=list(SPLITS))
    p.add_argument("--objective", default="gaussian", choices=list(SAMPLERS),
                   help="the DiT's objective (default gaussian, the config's); another trains its own DiTs, their "
                        "files named <name>-<objective>-...")
    p.add_argument("--samplers", default=None,
                   help=f"sampler:steps, comma-separated (default: the objective's, {SAMPLERS})")
    p.add_argument("--cfg", type=float, default=None, help="guidance scale (default: the config's)")
    p.add_argument("--num", type=int, default=None, help="captions per split, in order (default: all)")
    p.add_argument("--gfid-num", type=int, default=None,
                   help="samples in each gFID (default: all drawn; 0: no gFID). Inception costs ~0.3-0.6 s an image "
                        "on one core of the 2-core EPYC")
    p.add_argument("--batch-size", type=int, default=250, help="sampling batch")
    p.add_argument("--train-images", type=int, default=None,
                   help="encode and train on an evenly spread subset of the train split (smoke runs; default: all)")
    p.add_argument("--sweep", action="store_true", help="score DiT seed 0 of both arms at each of --sweep-scales")
    p.add_argument("--sweep-scales", default=SWEEP_SCALES)
    p.add_argument("--sweep-gfid", action="store_true", help="the sweep computes gFID too (slow)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--commit", action="store_true", help="git-commit each finished score file")
    p.add_argument("--list", action="store_true", help="print the scored runs and stop")
    p.add_argument("--report", action="store_true", help="print generation_section's markdown and stop")
    args = p.parse_args(argv)
    if args.list:
        print(listing(args.results))
        return 0
    if args.report:
        print(generation_section(args.results))
        return 0
    if args.tokenizer:
        stages = parse_tokenizers(args.tokenizer)
        name = args.name
        if name is None:
            raise SystemExit("--tokenizer needs --name (the pair's name in file names, e.g. n1)")
    elif args.num_tokens is not None:
        stages = study_stages(args.study_work, args.num_tokens, args.tokenizer_steps, args.tokenizer_seed)
        name = args.name or f"n{args.num_tokens}"
    else:
        raise SystemExit("give --tokenizer ARM=STAGE (each arm) with --name, or --num-tokens N (the study's runs)")
    overrides = list(args.override)
    if args.objective != "gaussian":
        from ..emoji32.few_step import OBJECTIVES

        overrides = OBJECTIVES[args.objective] + overrides
        name = f"{name}-{args.objective.replace('_', '-')}"
    if not (args.data / "captions.jsonl").is_file():
        raise SystemExit(f"--data {args.data}: no captions.jsonl (textok data fetch scenes)")
    import torch

    torch.set_num_threads(args.threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    plan = Plan(name=name, stages=stages, data=args.data, work=args.work.resolve(), results=args.results,
                config=args.config, overrides=tuple(overrides),
                dit_seeds=tuple(int(s) for s in args.dit_seeds.split(",") if s), splits=tuple(args.splits),
                samplers=tuple(Sampler.parse(s) for s in (args.samplers or SAMPLERS[args.objective]).split(",") if s),
                cfg=args.cfg, num=args.num,
                gfid_num=args.gfid_num, batch_size=args.batch_size, train_images=args.train_images,
                sweep_scales=floats(args.sweep_scales) if args.sweep else (), sweep_gfid=args.sweep_gfid,
                commit=args.commit)
    for arm, stage in stages.items():
        print(f"[t2i] {name} {arm}: {stage}", flush=True)
    run_plan(plan)
    print(generation_section(args.results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
