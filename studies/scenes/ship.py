"""Ship the trained scenes pair inside the package, in half precision (``studies.shipping``).

Takes the stage models of a TexTok run and its no-text baseline (``<work>/stages/<run>/step_XXXXXXX``: the EMA
model after that many steps) and their score records (``<results>/<run>.json``, written by
``studies/scenes/run.py``), and writes ``src/textok/pretrained/scenes32-{textok,baseline}-n<N>/``: float16
weights, ``config.json``, ``SOURCE.json`` (run, steps, recipe and overrides, the data set's recipe, the scores of
that budget, commit, CPU, training seconds) and a model card (``README.md``) saying all of it with the command that
wrote the scores. By default the newest budget both runs have a stage model and scores for.

``--dit ARM=FOLDER`` ships a text-to-image DiT (``textok train-dit``'s ``<run>/model``, trained on the tokens of that
arm's shipped stage) as ``scenes32-<arm>-n<N>-dit/`` beside it (``studies.shipping.ship_dit``).

    python -m studies.scenes.ship --work /work/scenes-trained                 # the newest common budget
    python -m studies.scenes.ship --work /work/scenes-trained --steps 8000 --study-steps 8000
    python -m studies.scenes.ship --work /work/scenes-trained --dit textok=<run>/model --dit baseline=<run>/model

``textok demo`` re-scores the shipped pair on new scenes (``textok.pretrained.find_pair``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

from ..shipping import OUT_ROOT, REPO, folder_bytes, ship_dit, ship_tokenizer, shipped_name, shown_path
from .t2i import RESULTS as T2I_RESULTS, run_name  # where and under which name t2i.py scores a DiT

PREFIX = "scenes32"
RUNS = ("textok-n1-s0", "baseline-n1-s0")
RESULTS = REPO / "docs" / "results" / "scenes" / "trained" / "runs"
WORK = Path(os.environ.get("TEXTOK_SCENES_WORK", Path.home() / ".cache" / "textok" / "studies" / "scenes"))
SPLITS = ("val", "val_compositional")

LICENCE_NOTE = """\
## Data and licence

The scenes are drawn by textok itself (`textok.data.scenes`: PIL polygons, no third-party content). The
weights are distributed with the `textok` package under its licence (Apache-2.0).
"""


def load_record(results: Path, run: str) -> dict:
    """The run's score record (``<results>/<run>.json``), or {} when absent."""
    path = Path(results) / f"{run}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def stage_steps(work: Path, run: str) -> set[int]:
    """The budgets ``<work>/stages/<run>/step_XXXXXXX`` holds a model for."""
    folder = Path(work) / "stages" / run
    found = (re.fullmatch(r"step_(\d+)", p.name) for p in folder.iterdir()) if folder.is_dir() else ()
    return {int(m.group(1)) for m in found if m and (folder / m.group(0) / "model.safetensors").is_file()}


def newest_common(work: Path, results: Path, runs: tuple[str, ...]) -> int:
    """The largest budget every run has both a stage model and scores for; ``SystemExit`` naming what is missing."""
    scored = {r: {int(k) for k in load_record(results, r).get("budgets", {})} for r in runs}
    common = set.intersection(*(stage_steps(work, r) & scored[r] for r in runs)) if runs else set()
    if not common:
        raise SystemExit("no budget with a stage model and scores for every run: " + "; ".join(
            f"{r}: stages {sorted(stage_steps(work, r))}, scores {sorted(scored[r])}" for r in runs)
            + f" (--work {work}, --results {results})")
    return max(common)


def study_command(record: dict, budget: dict, results: Path, study_steps: int) -> str:
    """The command that trained and scored this run (``studies/scenes/run.py``), from its record."""
    data = budget.get("data", {}).get("root", "data/scenes25k")
    data = os.path.relpath(data, REPO) if Path(data).is_absolute() and Path(data).is_relative_to(REPO) else data
    return (f"python -m studies.scenes.run --runs {record['run']} --steps {study_steps} --config configs/"
            f"{record['config']} --data {data} --results {shown_path(results)}")


def data_command(recipe: dict | None) -> str:
    """The ``textok data fetch scenes`` line that rebuilds the data set of ``recipe`` (its manifest's)."""
    if not recipe:
        return "textok data fetch scenes --root data/scenes25k --count 25000 --size 32  (recipe not recorded)"
    return (f"textok data fetch scenes --root data/scenes{recipe['count'] // 1000}k --count {recipe['count']} "
            f"--size {recipe['size']} --seed {recipe['seed']}")


def _fmt(v, digits: int) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def readme(source: dict) -> str:
    """The model card of a shipped scenes tokenizer, from its ``SOURCE.json``."""
    c, s, name = source["config"], source.get("scores") or {}, source["name"]
    arm = "TexTok tokenizer" if source["arm"] == "textok" else "no-text baseline tokenizer (TexTok without text)"
    lines = [f"# {name}", "",
             f"A {arm}: {c['image_size']} px, ViT width {c['width']} x depth {c['depth']} per side, "
             f"{c['num_tokens']} token(s) x {c['token_dim']} channels, text_in={c['text_in']}, trained on the "
             "procedural scenes (a caption states every factor of the image but each object's small offset).", "",
             "    from textok import CaptionedTokenizer, pretrained",
             f"    tok = CaptionedTokenizer.from_pretrained(pretrained.path(\"{name}\"))", "",
             f"- data: `{source['data_command']}` (the frozen set: train, val, val_compositional)",
             f"- recipe: `configs/{source['recipe']}` with `{' '.join(source['overrides'])}`",
             f"- steps: {source['steps']:,} x batch {source['batch_size']} ({source['train_seconds']} s of training on "
             f"{source['cpu']}, {source['threads']} thread(s); commit `{source['commit']}`)",
             f"- size: {source['weights_bytes'] / 1e6:.2f} MB of float16 weights ({source['parameters']:,} parameters; "
             "`from_pretrained` loads them as float32)",
             "- where it came from, in full: `SOURCE.json`", "",
             "## Scores", "",
             f"Float32, before shipping; written to `{source['scores_file']}` by",
             "", f"    {source['command']}", "",
             f"(budget {source['steps']}; {s.get('val', {}).get('num_images', '?')} evenly spaced images of each "
             "split; the train probe: training images, PSNR and SSIM only).", "",
             "| split | PSNR (dB) | SSIM | LPIPS | rFID |", "|---|---:|---:|---:|---:|"]
    for split in (*SPLITS, "train_probe"):
        r = s.get(split)
        if r:
            lines.append(f"| {split} ({r.get('num_images')} images) | {_fmt(r.get('psnr'), 2)} | "
                         f"{_fmt(r.get('ssim'), 4)} | {_fmt(r.get('lpips'), 4)} | {_fmt(r.get('rfid'), 2)} |")
    lines += ["", "`textok demo` re-scores this pair on new scenes (a seed no shipped model saw), with the "
              "detector-read adherence of the reconstructions.", "", LICENCE_NOTE]
    return "\n".join(lines)


def ship_run(run: str, steps: int, work: Path, results: Path, out_root: Path, study_steps: int | None = None) -> Path:
    """Ship ``<work>/stages/<run>/step_<steps>`` with the scores of that budget; returns the folder written."""
    from textok import CaptionedTokenizer

    stage = Path(work) / "stages" / run / f"step_{steps:07d}"
    record = load_record(results, run)
    budget = record.get("budgets", {}).get(str(steps))
    if budget is None:
        raise SystemExit(f"{run}: no scores of budget {steps} in {Path(results) / (run + '.json')}")
    name = shipped_name(PREFIX, CaptionedTokenizer.load_config(stage))
    eff = budget.get("effective_config", {})
    source = {
        "run": run, "steps": steps, "recipe": record.get("config"), "overrides": record.get("overrides", []),
        "batch_size": eff.get("optim", {}).get("batch_size"), "data_recipe": budget.get("data", {}).get("recipe"),
        "data_command": data_command(budget.get("data", {}).get("recipe")),
        "scores": {k: budget[k] for k in (*SPLITS, "train_probe") if k in budget},
        "scores_file": shown_path(Path(results) / f"{run}.json"),
        "command": study_command(record, budget, Path(results), study_steps or steps),
        **{k: budget.get(k) for k in ("commit", "cpu", "threads", "date", "final_loss")},
        "train_seconds": budget.get("train_seconds_total"), "effective_config": eff,
    }

    return ship_tokenizer(stage, Path(out_root) / name, source, readme)


def dit_readme(source: dict) -> str:
    """The model card of a shipped text-to-image DiT."""
    d, name = source["dit_config"], source["name"]
    lines = [f"# {name}", "",
             f"A text-to-image DiT (DiT-T2I: cross-attention to the caption; width {d['width']} x depth {d['depth']}) "
             f"that generates the tokens of `{source['tokenizer']}`, which decodes them (`generation.json` names that "
             "folder beside this one).", "",
             "    from textok.generation import Pipeline",
             f"    pipe = Pipeline.from_pretrained(textok.pretrained.path(\"{name}\"))",
             "    images = pipe(prompts=[\"a large red circle at center, on a grey background\"])", "",
             f"- recipe: `configs/{source.get('dit_config_file') or 'dit_t2i_scenes32.yaml'}`, seed "
             f"{source.get('dit_seed', '–')}, on the tokens of `{source['tokenizer']}` over the training split of "
             "`data/scenes25k` (`textok encode-dataset`)" + (f", {source['steps']:,} steps" if source.get("steps")
                                                             else "")
             + (f" ({source['train_seconds']:.0f} s on {source.get('cpu')}, {source.get('threads')} threads)"
                if source.get("train_seconds") else ""),
             f"- sampler: {source['diffusion'].get('sampler')}, {source['diffusion'].get('steps')} steps, "
             f"guidance {source['diffusion'].get('cfg_scale')}",
             f"- size: {source['weights_bytes'] / 1e6:.2f} MB of float16 weights ({source['parameters']:,} parameters)",
             "", "`textok demo` generates from typed captions with each arm's DiT and prints the adherence "
             "(`textok.metrics.scenes`).", ""]
    scores = source.get("scores")
    if scores:
        lines += ["## Scores", "",
                  f"One sample per caption of each split (1,000), read back by `textok.metrics.scenes` (% of images "
                  f"right; exact: the whole scene); gFID of the first {scores['gfid_num']} samples against the split's "
                  f"real renders. Written to `{scores['file']}` by", "", f"    {scores['command']}", "",
                  "| split | sampler | guidance | exact | colour | shape | size | background | gFID |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
        for r in scores["rows"]:
            a = r["images"]
            lines.append(f"| {r['split']} | {r['sampler']} {r['steps']} | {r['cfg_scale']:g} | "
                         + " | ".join(f"{100 * a[f]:.1f}%" for f in ("exact", "colour", "shape", "size", "background"))
                         + f" | {'–' if r['gfid'] is None else format(r['gfid'], '.1f')} |")
        lines.append("")
    return "\n".join(lines + [LICENCE_NOTE])


def t2i_scores(generation: Path, arm: str, results: Path = T2I_RESULTS) -> dict:
    """What ``studies/scenes/t2i.py`` recorded of the DiT in ``generation`` (``<work>/<name>/dit_<arm>_d<seed>/model``):
    its training and, when scored, its adherence and gFID rows (``{}`` when the folder is not one of that driver's)."""
    run = Path(generation).parent
    parts = run.name.split("_")
    if len(parts) != 3 or parts[0] != "dit" or parts[1] != arm or not parts[2][1:].isdigit():
        return {}
    seed = int(parts[2][1:])
    path = Path(results) / f"{run_name(run.parent.name, arm, seed)}.json"
    if not path.is_file():
        return {"dit_seed": seed}
    rec = json.loads(path.read_text(encoding="utf-8"))
    rows = [{"split": e["split"], "sampler": e["sampler"], "steps": e["steps"], "cfg_scale": e["cfg_scale"],
             "images": e["adherence"]["images"], "gfid": (e.get("gfid") or {}).get("gfid")}
            for e in rec["scores"].values()]
    gfid_num = sorted({(e.get("gfid") or {}).get("num") for e in rec["scores"].values()} - {None})
    dit = rec["dit"]
    return {"dit_seed": seed, "dit_config_file": dit.get("config"), "train_seconds": dit.get("seconds"),
            "cpu": dit.get("device"), "threads": dit.get("threads"),
            "scores": {"file": shown_path(path), "rows": rows, "gfid_num": ", ".join(map(str, gfid_num)) or "–",
                       "command": f"python -m studies.scenes.t2i --num-tokens {rec['num_tokens']} --study-work <work> "
                                  f"--dit-seeds {seed} --gfid-num {gfid_num[0] if gfid_num else 0}"}}


def ship_run_dit(arm: str, generation: Path, tokenizer: Path) -> Path:
    """Ship the DiT of ``generation`` beside the shipped tokenizer folder ``tokenizer``, its card with the scores
    ``studies/scenes/t2i.py`` recorded of it."""
    summary = Path(generation).parent / "train_summary.json"  # textok train-dit's, beside <run>/model
    steps = json.loads(summary.read_text(encoding="utf-8")).get("step") if summary.is_file() else None
    return ship_dit(generation, tokenizer, {"arm": arm, "steps": steps, **t2i_scores(generation, arm)}, dit_readme)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", nargs=2, default=list(RUNS), metavar=("TEXTOK", "BASELINE"))
    p.add_argument("--steps", type=int, default=None, help="the budget to ship (default: the newest both runs have)")
    p.add_argument("--study-steps", type=int, default=None,
                   help="the --steps the study was run with (the model card's command; default: --steps)")
    p.add_argument("--work", type=Path, default=WORK, help="the study's work folder (stages/<run>/step_XXXXXXX)")
    p.add_argument("--results", type=Path, default=RESULTS, help="the score records (<run>.json)")
    p.add_argument("--out-root", type=Path, default=OUT_ROOT, help="where the shipped folders go")
    p.add_argument("--dit", action="append", default=[], metavar="ARM=FOLDER",
                   help="a text-to-image DiT (textok train-dit's <run>/model) of arm textok or baseline")
    args = p.parse_args(argv)
    dits = {}
    for spec in args.dit:
        arm, _, folder = spec.partition("=")
        if arm not in ("textok", "baseline") or not folder:
            raise SystemExit(f"--dit {spec!r}: expected textok=FOLDER or baseline=FOLDER")
        dits[arm] = Path(folder)
    steps = args.steps or newest_common(args.work, args.results, tuple(args.runs))
    for run in args.runs:  # every run before any is written: never a pair of two budgets
        if str(steps) not in load_record(args.results, run).get("budgets", {}):
            raise SystemExit(f"{run}: no scores of budget {steps} in {args.results / (run + '.json')}")
        if steps not in stage_steps(args.work, run):
            raise SystemExit(f"{run}: no stage model {args.work / 'stages' / run / f'step_{steps:07d}'}")
    for run in args.runs:
        out = ship_run(run, steps, args.work, args.results, args.out_root, args.study_steps)
        source = json.loads((out / "SOURCE.json").read_text(encoding="utf-8"))
        gap, val = source["float16_vs_float32"], source["scores"].get("val", {})
        print(f"{run} @ {steps} -> {shown_path(out)} ({folder_bytes(out) / 1e6:.2f} MB; float16 vs float32 "
              f"reconstructions: {gap['psnr_db']:.1f} dB; val PSNR {_fmt(val.get('psnr'), 2)} dB)", flush=True)
        if source["arm"] in dits:
            d = ship_run_dit(source["arm"], dits.pop(source["arm"]), out)
            print(f"  DiT {shown_path(d)} ({folder_bytes(d) / 1e6:.2f} MB)", flush=True)
    if dits:
        raise SystemExit(f"--dit {', '.join(dits)}: no run of that arm among {args.runs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
