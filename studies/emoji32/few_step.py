"""Quality against the number of sampling steps (issue 15), measured in miniature.

One tokenizer (by default the latest stage of the reproduction study's ``textok-n4-s0``: the
best available until the study has converged; fixed at the first run and recorded in
``tokenizer.json``), its train-split tokens, and three class-conditional DiTs with the same
model, recipe, budget and seed (``configs/dit_emoji32_class.yaml``: label = emoji subcategory,
the detokenizer decodes with a held-out caption of the class):

- ``gaussian``: DiT's DDPM objective (epsilon + learned variance); sampled with DDIM at
  1..64 steps and ancestral DDPM at 250;
- ``flow``: rectified flow (velocity); sampled with Euler and Heun at 1..250 steps;
- ``meanflow``: MeanFlow (average velocity, guidance trained in with w = 2); 1, 2, 4, 8 steps;
- ``meanflow_w1``: the same without trained-in guidance (w = 1), trained last: guidance trades
  diversity for fidelity, and the tuned rows of the other objectives mostly choose little of it.

Per row (objective, sampler, steps) the classifier-free guidance scale is tuned on
``--tune-num`` samples (seed 1; 250 by default: FID-250 is biased
upward but the same for every scale it compares) over ``--scales`` (MeanFlow: 1, its guidance is trained in),
then the best scale is scored on ``--num`` class-balanced samples (seed 0): gFID, precision and
recall (k = 3) against the Inception statistics of all training images. Each row also records
its DiT forward passes per image (counted, guidance included) and its sampling wall time
(noisy under load; ``--time`` re-times every row's sampler on an idle machine, best of 3).

Every step is idempotent and resumable (a rerun skips finished rows; a DiT resumes from its
checkpoint). Scores: ``docs/results/generation/few_step/<objective>_<sampler>_<steps>.json``;
``--report`` writes the table into docs/results/generation.md and the plot
docs/img/few_step_gfid_vs_time.png.

    python -m studies.emoji32.few_step                       # everything, resumable
    python -m studies.emoji32.few_step --time                # idle machine: time the samplers
    python -m studies.emoji32.few_step --token-fd            # the token-space FD of every finished row (cheap)
    python -m studies.emoji32.few_step --spread gaussian_ddpm_250 meanflow_meanflow_001   # gFID over seeds 2, 3
    python -m studies.emoji32.few_step --report
    python -m studies.emoji32.few_step --dit-steps 50 --num 64 --tune-num 32 --work /tmp/fs --results /tmp/fsr  # smoke
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
from .reproduction import commit
from .reproduction_generation import caption_pool, finished, latest_stage, sh

OBJECTIVES = {  # DiT config overrides per objective (the rest: configs/dit_emoji32_class.yaml)
    "gaussian": [],
    "flow": ["diffusion.objective=flow", "diffusion.learned_variance=false", "model.learn_sigma=false",
             "diffusion.sampler=euler"],
    "meanflow": ["diffusion.objective=meanflow", "diffusion.learned_variance=false", "model.learn_sigma=false",
                 "model.time_inputs=2", "diffusion.sampler=meanflow", "diffusion.cfg_scale=1.0",
                 "diffusion.meanflow.cfg_scale=2.0", "preview.steps=1", "preview.cfg_scale=1.0"],
}
# MeanFlow without trained-in guidance (w = 1): the tuned rows of the other objectives mostly pick little or no
# guidance at this scale, and guidance trades diversity (FD) for fidelity, so w = 2 alone would confound the two
OBJECTIVES["meanflow_w1"] = [o if o != "diffusion.meanflow.cfg_scale=2.0" else "diffusion.meanflow.cfg_scale=1.0"
                             for o in OBJECTIVES["meanflow"]]
STEPS = (1, 2, 4, 8, 16, 32, 64, 250)


@dataclasses.dataclass(frozen=True)
class Row:
    objective: str
    sampler: str
    steps: int

    @property
    def name(self) -> str:
        return f"{self.objective}_{self.sampler}_{self.steps:03d}"


def rows() -> list[Row]:
    out = [Row("gaussian", "ddim", s) for s in STEPS[:-1]] + [Row("gaussian", "ddpm", 250)]
    out += [Row("flow", sampler, s) for sampler in ("euler", "heun") for s in STEPS]
    return out + [Row(objective, "meanflow", s) for objective in ("meanflow", "meanflow_w1") for s in (1, 2, 4, 8)]


class ForwardCounter:
    """Counts the DiT's forward passes per generated image (a guided step runs the batch twice)."""

    def __init__(self, module):
        self.rows = 0
        self.handle = module.register_forward_hook(self._hook)

    def _hook(self, module, inputs, output):
        self.rows += int(inputs[0].shape[0])

    def close(self):
        self.handle.remove()


def sample_and_score(pipe, row: Row, scale: float, num: int, seed: int, ref, extractor, tmp: Path) -> dict:
    import torch

    from textok.generation import sample_fid
    from textok.metrics import evaluate_generation

    counter = ForwardCounter(pipe.dit)
    t0 = time.perf_counter()
    try:
        sample_fid(pipe, num, tmp, batch_size=250, cfg_scale=scale, steps=row.steps, sampler=row.sampler, seed=seed,
                   progress=False)
    finally:
        counter.close()
    seconds = time.perf_counter() - t0
    report = evaluate_generation(tmp, ref, extractor=extractor, progress=False)
    tmp.unlink()
    return {"cfg_scale": scale, "num": num, "seed": seed, "gfid": report["gfid"], "precision": report["precision"],
            "recall": report["recall"], "dit_forwards_per_image": counter.rows / num,
            "sampling_seconds_per_image_loaded": seconds / num, "threads": torch.get_num_threads()}


def resolve_tokenizer(args, work: Path) -> dict:
    """The tokenizer of this experiment, fixed at the first run (copied into ``work``)."""
    record = work / "tokenizer.json"
    if record.is_file():
        return json.loads(record.read_text())
    src = Path(args.tokenizer) if args.tokenizer else latest_stage(Path(args.study_work), Path(args.study_results),
                                                                   args.tokenizer_run)
    from textok.io import copy_dir_atomic

    dst = copy_dir_atomic(src, work / "tokenizer")
    info = {"source": str(src), "run": None if args.tokenizer else args.tokenizer_run,
            "steps": int(src.name[5:]) if src.name.startswith("step_") else None, "path": str(dst)}
    record.write_text(json.dumps(info, indent=2) + "\n")
    return info


def write_tokenizer_record(tok: dict, results: Path) -> None:
    """``results/tokenizer.json``: the run, steps and patch size of the experiment's tokenizer (the report's line)."""
    config = json.loads((Path(tok["path"]) / "config.json").read_text())
    record = {"run": tok["run"], "steps": tok["steps"], "patch_size": config.get("patch_size")}
    (results / "tokenizer.json").write_text(json.dumps(record, indent=2) + "\n")


def run(args) -> None:
    import torch

    from textok.generation import Pipeline
    from textok.metrics import InceptionFeatures, load_stats

    torch.set_num_threads(args.threads)
    work, results, data = Path(args.work), Path(args.results), Path(args.data)
    work.mkdir(parents=True, exist_ok=True)
    results.mkdir(parents=True, exist_ok=True)
    tok = resolve_tokenizer(args, work)
    write_tokenizer_record(tok, results)
    textok, t = [sys.executable, "-m", "textok"], args.threads
    ref_path = ref_stats_path(args)
    ref_path.parent.mkdir(parents=True, exist_ok=True)
    if not ref_path.is_file():
        sh(textok + ["fid-stats", "--data", str(data), "--split", "train", "--image-size", "32", "--out", str(ref_path),
                     "--no-progress", "--threads", str(t)] + (["--num", str(args.ref_num)] if args.ref_num else []), t)
    cache = work / "lat_train"
    sh(textok + ["encode-dataset", "--checkpoint", tok["path"], "--data", str(data), "--split", "train",
                 "--out", str(cache), "--threads", str(t)], t)  # resumes; a finished cache is kept
    pool = caption_pool(data, work / "class_captions_heldout_emoji.json")
    todo = [r for r in rows() if r.objective in args.objectives and (args.only is None or r.name in args.only)]
    ref = load_stats(ref_path)
    extractor = InceptionFeatures()
    # objective by objective (train its DiT, then score its rows), so that finished rows appear early: the DDPM
    # reference first (its 250-step row leads), then MeanFlow (the few-step method), then flow matching
    for objective in ("gaussian", "meanflow", "flow", "meanflow_w1"):
        mine = sorted((r for r in todo if r.objective == objective and not (results / f"{r.name}.json").is_file()),
                      key=lambda r: (r.sampler != "ddpm", r.steps))
        if not mine:  # every row of this objective is scored
            continue
        dit = work / f"dit_{objective}"
        if not finished(dit, args.dit_steps):
            resume = ["--resume"] if (dit / "checkpoints").is_dir() else []
            sh(textok + ["train-dit", "--config", str(REPO / "configs" / "dit_emoji32_class.yaml"), "--out", str(dit),
                         "--threads", str(t)] + resume + OBJECTIVES[objective] +
               [f"data.cache={cache}", f"data.caption_pool={pool}", f"schedule.max_steps={args.dit_steps}",
                f"seed={args.seed}", "logging.progress=false"], t)
        pipe = Pipeline.from_pretrained(dit / "model")
        floor_row(args, pipe, work, ref, extractor, tok, results)  # once, with whichever pipeline comes first
        for row in mine:
            score_row(args, row, pipe, ref, extractor, tok, work, results)


def floor_row(args, pipe, work: Path, ref, extractor, tok: dict, results: Path) -> None:
    """The tokenizer's floor for every row: --num training images' own tokens (seed 0), decoded as
    ``pipe`` decodes generated tokens (a held-out caption of their class), scored against the same
    reference. A DiT that reproduced the token distribution exactly would score about this."""
    out = results / "floor_reconstruction.json"
    if out.is_file():
        return
    import random

    import numpy as np
    import torch

    from textok.data.transforms import to_uint8
    from textok.io import write_json_atomic
    from textok.latents import LatentCache
    from textok.metrics import evaluate_generation

    cache = LatentCache(work / "lat_train")
    picks = torch.randperm(len(cache), generator=torch.Generator().manual_seed(args.seed))[:args.num]
    rng = random.Random(args.seed)
    images = []
    with torch.inference_mode():
        for lo in range(0, len(picks), 250):
            idx = picks[lo:lo + 250]
            captions = pipe.class_captions(cache.labels[idx].tolist(), rng)
            images.append(to_uint8(pipe.detokenizer.decode(cache.tensors["tokens"][idx], captions)))
    report = evaluate_generation(np.concatenate(images), ref, extractor=extractor, progress=False)
    record = {"what": "reconstruction floor: training images' own tokens decoded with a held-out caption of their class",
              "num": len(picks), "seed": args.seed, "gfid": report["gfid"], "precision": report["precision"],
              "recall": report["recall"], "tokenizer": {k: tok[k] for k in ("run", "steps")},
              "reference": f"emoji train 32 px ({ref.num} images)", "date": time.strftime("%Y-%m-%d")}
    write_json_atomic(out, record)
    if args.commit:
        commit(results, "few-step: the tokenizer's reconstruction floor (scores)")
    print(f"[few-step] floor (own tokens decoded): FID {report['gfid']:.2f} precision {report['precision']:.3f} "
          f"recall {report['recall']:.3f}", flush=True)


def score_row(args, row: Row, pipe, ref, extractor, tok: dict, work: Path, results: Path) -> None:
    """Tune the row's guidance scale on --tune-num samples, score the best on --num, write the row's JSON."""
    from textok.io import write_json_atomic

    tune_file = work / "tune" / f"{row.name}.json"  # tuning results survive a stop
    tune_file.parent.mkdir(parents=True, exist_ok=True)
    tuned = json.loads(tune_file.read_text()) if tune_file.is_file() else {}
    scales = [1.0] if row.sampler == "meanflow" else args.scales
    for scale in scales:
        if str(scale) not in tuned and len(scales) > 1:
            tuned[str(scale)] = sample_and_score(pipe, row, scale, args.tune_num, 1, ref, extractor,
                                                 work / f"tmp_{row.name}.npz")
            tune_file.write_text(json.dumps(tuned, indent=1) + "\n")
            print(f"[few-step] {row.name} tune cfg {scale}: FID-{args.tune_num} {tuned[str(scale)]['gfid']:.2f}",
                  flush=True)
    best = min(scales, key=lambda s: tuned[str(s)]["gfid"]) if len(scales) > 1 else scales[0]
    final = sample_and_score(pipe, row, best, args.num, 0, ref, extractor, work / f"tmp_{row.name}.npz")
    record = {"objective": row.objective, "sampler": row.sampler, "steps": row.steps, **final,
              "tuning": {"num": args.tune_num, "seed": 1, "gfid_by_scale": {s: v["gfid"] for s, v in tuned.items()}},
              "tokenizer": {k: tok[k] for k in ("run", "steps")}, "dit_steps": args.dit_steps,
              "reference": f"emoji train 32 px ({ref.num} images)", "date": time.strftime("%Y-%m-%d")}
    out = results / f"{row.name}.json"
    write_json_atomic(out, record)
    if args.commit:
        commit(results, f"few-step: {row.name} (scores)")
    print(f"[few-step] {row.name}: cfg {best} gFID {final['gfid']:.2f} precision {final['precision']:.3f} "
          f"recall {final['recall']:.3f} ({final['dit_forwards_per_image']:.0f} DiT forwards / image)", flush=True)


def scored_rows(results: Path, only=None):
    """(row, its score file, its record) for every row that has been scored (of ``only``: row names, if given)."""
    for row in rows():
        out = results / f"{row.name}.json"
        if out.is_file() and (only is None or row.name in only):
            yield row, out, json.loads(out.read_text())


def pipelines(work: Path):
    """``pipeline(objective)``: the trained DiT of an objective as a generation Pipeline, loaded once."""
    from textok.generation import Pipeline

    return functools.cache(lambda objective: Pipeline.from_pretrained(work / f"dit_{objective}" / "model"))


def ref_stats_path(args) -> Path:
    """The training images' Inception statistics (shared with reproduction_generation.py)."""
    return Path(args.study_work) / "generation" / "ref_train_32.npz"


def time_rows(args) -> None:
    """Re-time each finished row's sampler (its tuned scale; DiT + detokenizer, batch 250) on this machine."""
    import torch

    from textok.io import write_json_atomic
    from textok.training import cpu_name

    torch.set_num_threads(args.threads)
    work, results = Path(args.work), Path(args.results)
    pipeline = pipelines(work)
    for row, out, record in scored_rows(results, args.only):
        pipe = pipeline(row.objective)
        labels = [i % pipe.dit.config.num_classes for i in range(args.time_batch)]
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            with torch.inference_mode():
                pipe(labels=labels, steps=row.steps, sampler=row.sampler, cfg_scale=record["cfg_scale"])
            best = min(best, time.perf_counter() - t0)
        record["sampling_seconds_per_image"] = best / args.time_batch
        record["timing"] = {"batch": args.time_batch, "threads": args.threads, "best_of": 3,
                            "cpu": cpu_name(), "date": time.strftime("%Y-%m-%d")}
        write_json_atomic(out, record)
        print(f"[few-step] {row.name}: {1e3 * best / args.time_batch:.3f} ms / image", flush=True)


def token_fd(args) -> None:
    """A second, tokenizer-free score per finished row: the Frechet distance between --num generated token
    sets (labels drawn as the training images' labels, seed 0; the row's sampler, steps and guidance) and all
    training tokens, in the DiT's normalised token space (N x d values per image). gFID passes every sample
    through the detokenizer and Inception, whose blur floors it (floor_reconstruction.json); the token FD
    reads the DiT alone. Its own floor: --num real training tokens against all of them."""
    import torch

    from textok.diffusion.guidance import Condition, guided_model
    from textok.io import write_json_atomic
    from textok.latents import LatentCache
    from textok.metrics.fid import feature_stats, frechet_distance_to_features

    torch.set_num_threads(args.threads)
    work, results = Path(args.work), Path(args.results)
    cache = LatentCache(work / "lat_train")
    real = cache.normalize(cache.tensors["tokens"]).flatten(1).double().numpy()
    mu, sigma = feature_stats(real)
    picks = torch.randperm(len(cache), generator=torch.Generator().manual_seed(args.seed))[:args.num]
    labels = cache.labels[picks]
    floor_file = results / "floor_token_fd.json"
    if not floor_file.is_file():
        sub = real[torch.randperm(len(cache), generator=torch.Generator().manual_seed(args.seed + 1))[:args.num].numpy()]
        value = float(frechet_distance_to_features(mu, sigma, sub))
        write_json_atomic(floor_file, {"what": f"{args.num} real training tokens vs all training tokens (token FD floor)",
                                       "num": args.num, "token_fd": value, "date": time.strftime("%Y-%m-%d")})
        print(f"[few-step] token FD floor: {value:.4f}", flush=True)
    pipeline = pipelines(work)
    for row, out, record in scored_rows(results, args.only):
        if "token_fd" in record and "token_fd_cfg1" in record:
            continue
        pipe = pipeline(row.objective)

        def fd(scale: float) -> float:
            gen = []
            with torch.inference_mode():
                for b, lo in enumerate(range(0, args.num, 250)):
                    y = labels[lo:lo + 250]
                    model = guided_model(pipe.dit, Condition(labels=y), scale)
                    g = torch.Generator().manual_seed(args.seed * 100_003 + b)
                    gen.append(pipe.diffusion.sample(model, (len(y), pipe.dit.config.num_tokens,
                                                             pipe.dit.config.token_dim),
                                                     steps=row.steps, sampler=row.sampler, generator=g))
            return float(frechet_distance_to_features(mu, sigma, torch.cat(gen).flatten(1).double().numpy()))

        if "token_fd" not in record:
            record["token_fd"] = fd(record["cfg_scale"])
        # the sampler alone, without the (noisily tuned) guidance: every row at scale 1
        record["token_fd_cfg1"] = record["token_fd"] if record["cfg_scale"] == 1.0 else fd(1.0)
        record["token_fd_protocol"] = {"num": args.num, "labels": "training labels of a seeded draw", "seed": args.seed}
        write_json_atomic(out, record)
        print(f"[few-step] {row.name}: token FD {record['token_fd']:.4f} (at guidance 1: {record['token_fd_cfg1']:.4f})",
              flush=True)


def seed_spread(args) -> None:
    """The sampling noise of gFID: re-score each row of ``--spread`` (its tuned scale, ``--num`` samples) with
    each seed of ``--spread-seeds`` (other than the seed-0 samples of its row and the seed-1 tuning samples).
    The report reads "matches" against the 250-step DDPM row through these spreads."""
    import torch

    from textok.io import write_json_atomic
    from textok.metrics import InceptionFeatures, load_stats

    torch.set_num_threads(args.threads)
    work, results = Path(args.work), Path(args.results)
    ref = load_stats(ref_stats_path(args))
    extractor = InceptionFeatures()
    pipeline = pipelines(work)
    for row, out, record in scored_rows(results, args.spread):
        by_seed = record.setdefault("gfid_by_seed", {str(record["seed"]): record["gfid"]})
        for seed in args.spread_seeds:
            if str(seed) in by_seed:
                continue
            if seed in (record["seed"], 1):
                raise SystemExit(f"--spread-seeds: seed {seed} is the row's own or the tuning seed; use others")
            scored = sample_and_score(pipeline(row.objective), row, record["cfg_scale"], args.num, seed, ref,
                                      extractor, work / f"tmp_spread_{row.name}.npz")
            by_seed[str(seed)] = scored["gfid"]
            write_json_atomic(out, record)  # after each seed: a stop loses one scoring at most
            print(f"[few-step] {row.name} seed {seed}: gFID {scored['gfid']:.2f}", flush=True)
        if args.commit:
            commit(results, f"few-step: {row.name} (gFID over seeds)")


def gfid_spread(record: dict) -> tuple[float, float, int] | None:
    """(mean, sample std, seeds) of a row's gFID over its scored seeds, or None with fewer than 2."""
    values = list(record.get("gfid_by_seed", {}).values())
    return (statistics.mean(values), statistics.stdev(values), len(values)) if len(values) >= 2 else None


def report(args) -> None:
    results = Path(args.results)
    recs = {r.name: json.loads((results / f"{r.name}.json").read_text()) for r in rows()
            if (results / f"{r.name}.json").is_file()}
    tok = json.loads((results / "tokenizer.json").read_text()) if (results / "tokenizer.json").is_file() else {}
    floor_file = results / "floor_reconstruction.json"
    floor = json.loads(floor_file.read_text()) if floor_file.is_file() else None
    tfd_file = results / "floor_token_fd.json"
    tfd = json.loads(tfd_file.read_text()) if tfd_file.is_file() else None
    labels = {"gaussian": "DDPM objective (learned variance)", "flow": "flow matching", "meanflow": "MeanFlow (w = 2 trained in)",
              "meanflow_w1": "MeanFlow (no guidance, w = 1)"}
    p = tok.get("patch_size")
    L = [f"Tokenizer: `{tok.get('run')}` at {tok.get('steps')} steps{f' ({p}x{p} patches)' if p else ''} (the best "
         "available stage of the reproduction study when this experiment started; not a converged model unless the "
         "study says so). Class-conditional "
         "DiT (`configs/dit_emoji32_class.yaml`), the same model, recipe and budget for each objective. gFID, "
         "precision and recall of class-balanced samples against all training images (emoji 32 px). The guidance "
         "scale of each row was tuned on the FID of its tuning samples (seed 1) and is stated; the final samples "
         "use seed 0.", "",
         *(["The tokenizer's floor: " + f"{floor['num']} training images' own tokens, decoded as generation decodes "
            f"them (a held-out caption of their class), score FID {floor['gfid']:.2f}, precision "
            f"{floor['precision']:.3f}, recall {floor['recall']:.3f} against the same reference "
            "(`floor_reconstruction.json`): a DiT that reproduced the token distribution exactly would score about "
            "this.", ""] if floor else []),
         *([f"Token FD: the Frechet distance between {tfd['num']} generated token sets and all training tokens in "
            "the DiT's normalised token space (`--token-fd`; labels drawn as the training labels), which reads the "
            "DiT without the detokenizer's blur; its floor, real training tokens against all of them, is "
            f"{tfd['token_fd']:.4f}.", ""] if tfd else []),
         "| DiT objective | sampler | steps | DiT forwards / image | guidance (tuned) | gFID | precision | recall | samples "
         "| token FD | token FD, guidance 1 | ms / image (idle) |",
         "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows():
        r = recs.get(row.name)
        if r is None:
            L.append(f"| {labels[row.objective]} | {row.sampler} | {row.steps} | | | pending | | | | | | |")
            continue
        ms = r.get("sampling_seconds_per_image")
        L.append(f"| {labels[row.objective]} | {row.sampler} | {row.steps} | {r['dit_forwards_per_image']:.0f} | "
                 f"{r['cfg_scale']:g} | {r['gfid']:.2f} | {r['precision']:.3f} | {r['recall']:.3f} | {r['num']} | "
                 f"{'' if 'token_fd' not in r else format(r['token_fd'], '.4f')} | "
                 f"{'' if 'token_fd_cfg1' not in r else format(r['token_fd_cfg1'], '.4f')} | "
                 f"{'' if ms is None else f'{1e3 * ms:.2f}'} |")
    ddpm = recs.get(Row("gaussian", "ddpm", 250).name)
    if ddpm:
        spread_ref = gfid_spread(ddpm)
        for objective in ("meanflow", "meanflow_w1", "flow", "gaussian"):
            hits = sorted((r["steps"], r["sampler"]) for r in recs.values()
                          if r["objective"] == objective and r["gfid"] <= ddpm["gfid"] and r["steps"] < 250)
            line = f"{labels[objective]}: " + (f"matches the 250-step DDPM gFID ({ddpm['gfid']:.2f}) at "
                                               f"{hits[0][0]} step(s) ({hits[0][1]})" if hits else
                                               f"no row below 250 steps reaches the 250-step DDPM gFID ({ddpm['gfid']:.2f})")
            if "token_fd" in ddpm:
                fd_hits = sorted((r["steps"], r["sampler"]) for r in recs.values() if r["objective"] == objective
                                 and r.get("token_fd", float("inf")) <= ddpm["token_fd"] and r["steps"] < 250)
                line += ("; its token FD" + (f" at {fd_hits[0][0]} step(s) ({fd_hits[0][1]})" if fd_hits else
                                             " at no row below 250 steps") + f" (DDPM-250: {ddpm['token_fd']:.4f})")
            for r in sorted(recs.values(), key=lambda r: r["steps"]):
                sp = gfid_spread(r)
                if r["objective"] != objective or r["steps"] >= 250 or not (sp and spread_ref):
                    continue
                diff, se = sp[0] - spread_ref[0], (sp[1] ** 2 / sp[2] + spread_ref[1] ** 2 / spread_ref[2]) ** 0.5
                verdict = "within" if diff < 2 * se else "outside"
                line += (f"; over seeds, {r['sampler']} at {r['steps']} step(s) scores {sp[0]:.2f} ± {sp[1]:.2f} "
                         f"(n = {sp[2]}) against DDPM-250's {spread_ref[0]:.2f} ± {spread_ref[1]:.2f} (n = "
                         f"{spread_ref[2]}): {diff:+.2f}, {verdict} twice the standard error of the difference "
                         f"({2 * se:.2f})")
            pending = sum(1 for row in rows() if row.objective == objective and row.name not in recs)
            L += ["", line + (f" ({pending} of its rows still pending)." if pending else ".")]
    plot(recs, Path(args.img) / "few_step_gfid_vs_time.png", labels)
    L += ["", "![gFID vs sampling time](../img/few_step_gfid_vs_time.png)"]
    block = "\n".join(L)
    doc = Path(args.doc)
    text = doc.read_text()
    start, end = "<!-- few-step table: studies/emoji32/few_step.py --report -->", "<!-- end of the few-step table -->"
    if start in text and end in text:
        text = text[:text.index(start) + len(start)] + "\n" + block + "\n" + text[text.index(end):]
    else:
        text += f"\n{start}\n{block}\n{end}\n"
    from textok.io import write_text_atomic

    write_text_atomic(doc, text)
    print(block)


def plot(recs: dict, path: Path, labels: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    timed = all("sampling_seconds_per_image" in r for r in recs.values())
    fig, ax = plt.subplots(figsize=(6, 4))
    for (objective, sampler), style in {("gaussian", "ddim"): "o-", ("gaussian", "ddpm"): "*", ("flow", "euler"): "s-",
                                        ("flow", "heun"): "^-", ("meanflow", "meanflow"): "D-",
                                        ("meanflow_w1", "meanflow"): "d--"}.items():
        pts = sorted((r["sampling_seconds_per_image"] * 1e3 if timed else r["dit_forwards_per_image"], r["gfid"])
                     for r in recs.values() if r["objective"] == objective and r["sampler"] == sampler)
        if pts:
            ax.plot(*zip(*pts), style, label=f"{labels[objective]}, {sampler}")
    ref = recs.get(Row("gaussian", "ddpm", 250).name)
    if ref:  # the level a few-step row has to reach
        ax.axhline(ref["gfid"], color="C1", ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("sampling ms / image (idle CPU, DiT + detokenizer)" if timed else "DiT forwards / image")
    ax.set_ylabel("gFID (train reference)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", default=str(Path.home() / "textok-study" / "few_step"))
    p.add_argument("--results", default=str(REPO / "docs" / "results" / "generation" / "few_step"))
    p.add_argument("--img", default=str(REPO / "docs" / "img"))
    p.add_argument("--data", default=str(REPO / "data" / "emoji"))
    p.add_argument("--study-work", default=str(Path.home() / "textok-study"), help="the reproduction study's --work")
    p.add_argument("--study-results", default=str(REPO / "docs" / "results" / "reproduction" / "runs"))
    p.add_argument("--tokenizer-run", default="textok-n4-s0")
    p.add_argument("--tokenizer", default=None, help="a tokenizer folder instead of the study's latest stage")
    p.add_argument("--objectives", nargs="+", default=list(OBJECTIVES), choices=list(OBJECTIVES))
    p.add_argument("--only", nargs="+", default=None,
                   help="row names, e.g. gaussian_ddpm_250 (training and scoring, --time, --token-fd)")
    p.add_argument("--dit-steps", type=int, default=8000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num", type=int, default=2000)
    p.add_argument("--tune-num", type=int, default=250, help="samples per guidance scale when tuning (seed 1)")
    p.add_argument("--scales", type=float, nargs="+", default=[1.0, 1.5, 2.5])
    p.add_argument("--ref-num", type=int, default=None, help="reference images (default: all; fewer: smoke runs)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--time", action="store_true", help="time each finished row's sampler (idle machine)")
    p.add_argument("--time-batch", type=int, default=250)
    p.add_argument("--token-fd", action="store_true", help="add the token-space FD to every finished row (cheap)")
    p.add_argument("--spread", nargs="+", default=None, metavar="ROW",
                   help="re-score these finished rows with --spread-seeds (gFID sampling noise)")
    p.add_argument("--spread-seeds", type=int, nargs="+", default=[2, 3])
    p.add_argument("--report", action="store_true")
    p.add_argument("--doc", default=str(REPO / "docs" / "results" / "generation.md"), help="--report writes its table here")
    p.add_argument("--commit", action="store_true", help="git-commit each finished row's JSON (and nothing else)")
    args = p.parse_args()
    if args.time:
        time_rows(args)
    elif args.token_fd:
        token_fd(args)
    elif args.spread:
        seed_spread(args)
    elif args.report:
        report(args)
    else:
        run(args)


if __name__ == "__main__":
    main()
