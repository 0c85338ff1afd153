"""The reproduction study's report, generated from its score files: loads them, then writes the page, the JSON,
the plots and the README's results table. The tables are ``report_tables`` (reconstruction) and
``report_generation``, the figures ``report_plots``, the README's table ``report_readme``.

    python -m studies.emoji32.reproduction_report                  # JSON + Markdown + plots
    python -m studies.emoji32.reproduction_report --grids          # + reconstruction grids (needs the
                                                               #   stage models in --work)

Reads ``docs/results/reproduction/runs/<run>/step_*.json`` (written by
``studies/emoji32/reproduction.py``) and writes
- ``docs/results/reproduction.json``: ``records`` (one per run and split, at the run's latest
  budget: arm, num_tokens, split, seed, steps, rfid, psnr, ssim, lpips, train_seconds, ablation, cpu, threads,
  train_seconds_complete: false where a resumed stage's seconds cover only its last process, null where
  the stage predates that flag)
  and ``curves`` (every budget of every run);
  (every row's ``measures``: ``"new"`` for `val_unseen`, ``"recall"`` for `val`, ``studies.stats.SPLIT_MEASURES``);
- ``docs/results/reproduction.md``: the summary lines computed from the numbers, then every table (nothing in it
  is typed by hand; the narrative is the study's page, ``studies/emoji32/README.md``), new-emoji split first;
- ``docs/results/reproduction/summary.json``: per split and N, mean ± std per arm over seeds, seeds, gain, Welch p;
- the results table in ``README.md`` between its markers (skipped, with a message, where they are missing);
- ``docs/img/reproduction_rfid_vs_n.png`` and ``docs/img/reproduction_curves.png``;
- the runs trained again on another machine, ``docs/results/reproduction/replicates/<run>-<tag>/step_*.json``
  (the same score files, from ``reproduction.py --job`` in another work folder), beside the study's runs;
- the caption-reliance tables from ``docs/results/reproduction/caption_reliance.json`` and ``caption_reliance_n*.json``
  beside it (``studies/emoji32/caption_reliance.py``);
- with ``--grids``: ``docs/img/reproduction_grid.png`` (held-out emoji, both arms at every N) and
  ``docs/img/reproduction_caption_swap.png`` (N = 2: original | baseline | TexTok | TexTok
  decoding the same tokens with another image's caption).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Sequence

from ..stats import SPLIT_MEASURES, split_label
from .report_generation import caption_reliance_table, generation_pending, generation_table
from .report_plots import BY_CATEGORY, by_category, grids, plots
from .report_readme import fill_readme, results_block
from .report_tables import (COMMAND, TOKENS, ablation_summary, ablation_table, category_table, compression,
                            convergence_table, cooldown_table, curves_table, describe_recipe, gain_over_training,
                            is_converged, recipe_check, recipe_choice, replicates_section, seed0_table, seeded_tokens,
                            seeds_table, status_table, summary_data, summary_lines, table1)
from .reproduction import REPO, SPLIT_ABOUT, TRAIN_PROBE, done_stages, remaining_cost, study_runs

PAPER = ("The paper (ImageNet, FID-50k protocol): 29.2% average rFID gain at 256 px and 48.1% at 512 px, "
         "37.2% at N = 32 vs 24.2% at N = 256; equal rFID with 2x fewer tokens at 256 px, 4x at 512 px.")
HISTORY = REPO / "docs" / "results" / "reproduction" / "patch4" / "runs"  # the first recipe's runs (4x4 patches)
GENERATION = REPO / "docs" / "results" / "reproduction" / "generation"  # studies/emoji32/reproduction_generation.py


def stage_rows(rec: dict, run: str, ablation: str | None = None) -> list[dict]:
    """One row per split of a stage's score file (``reproduction.py``'s step_*.json)."""
    rows = []
    for r in rec["records"]:
        row = {k: r[k] for k in ("arm", "num_tokens", "split", "seed", "steps", "rfid", "psnr", "ssim", "lpips",
                                 "num_images")}
        row.update(run=run, ablation=ablation, train_seconds=r["train_seconds"], cpu=rec.get("cpu"),
                   threads=rec.get("threads"),
                   train_seconds_complete=rec.get("train_seconds_complete"),  # None: before the flag
                   measures=SPLIT_MEASURES.get(r["split"]), commit=rec.get("commit"))  # "new" | "recall"
        rows.append(row)
    return rows


def load(results: Path) -> tuple[list[dict], list[dict], dict[tuple[str, int], dict]]:
    """-> (final records, all-stage records, train probes): the records one per run x split; the probes
    (run, steps) -> PSNR / SSIM on TRAIN_PROBE training images, for the stages that have one."""
    finals, curves, probes = [], [], {}
    for run in study_runs():
        stages = sorted((results / run.name).glob("step_*.json"))
        for i, path in enumerate(stages):
            rec = json.loads(path.read_text())
            if "train_probe" in rec:
                probes[(run.name, int(rec["steps"]))] = rec["train_probe"]
            rows = stage_rows(rec, run.name, run.ablation)
            curves += rows
            if i == len(stages) - 1:
                finals += rows
    return finals, curves, probes


REPLICATES = REPO / "docs" / "results" / "reproduction" / "replicates"  # <run>-<tag>/step_*.json: runs trained again


def load_replicates(folder: Path = REPLICATES) -> list[dict]:
    """Study runs trained again elsewhere (another machine: the same recipe and seed), ``<run>-<tag>/step_*.json``
    (the score files of ``reproduction.py --job RUN --steps S --work <another folder> --results <another folder>``,
    copied here). -> rows as ``load``'s curves, with ``replicate`` = tag and ``probe`` = the stage's train-probe PSNR
    (None where it has none)."""
    names = {r.name: r for r in study_runs()}
    rows = []
    for d in sorted(p for p in folder.glob("*") if p.is_dir()) if folder.is_dir() else ():
        run, _, tag = d.name.rpartition("-")
        if run not in names:
            continue
        for rec in done_stages(folder, d.name).values():
            for row in stage_rows(rec, run, names[run].ablation):
                row.update(replicate=tag, probe=(rec.get("train_probe") or {}).get("psnr"))
                rows.append(row)
    return rows


def load_generation(folder: Path) -> list[dict]:
    """The score files of studies/emoji32/reproduction_generation.py (one per task x arm x N x tokenizer budget)."""
    return [json.loads(p.read_text()) for p in sorted(Path(folder).glob("*.json"))] if Path(folder).is_dir() else []


RELIANCE = REPO / "docs" / "results" / "reproduction" / "caption_reliance.json"  # studies/emoji32/caption_reliance.py
RELIANCE_OTHERS = "caption_reliance_n*.json"  # the same at other N, beside it (--out)
PAGE = "../../studies/emoji32/README.md"  # the study's hand-written page, from docs/results/


def markdown(finals, curves, cost: str | None = None, history=(), generation=(), probes=None,
             by_cat: dict | None = None, reliance: Sequence[dict] = (), replicas: Sequence[dict] = (),
             twins: dict | None = None) -> str:
    """The report: the generated summary, then every table and plot. The narrative (what the study is, how to run
    and read it, the seed-0 investigation) is the study's hand-written page, ``studies/emoji32/README.md``."""
    cpu = sorted({r["cpu"] for r in finals + list(history) if r.get("cpu")})
    summary = summary_lines(curves, twins, ablation_summary(curves))[:15]
    L = ["# Reproduction: the paper's Table 1 in miniature", "",
         f"Generated by `{COMMAND}` from the score files of `python -m studies.emoji32.reproduction` "
         "(docs/results/reproduction/runs/; first recipe: .../patch4/runs/; pilots: .../pilots/); do not edit by "
         f"hand. What the study is, how to run it and how to read it: [studies/emoji32/README.md]({PAGE}).", "",
         "## Summary", ""] + summary + [
         "", f"Splits: {split_label('val_unseen')}: {SPLIT_ABOUT['val_unseen']}; {split_label('val')}: {SPLIT_ABOUT['val']}.",
         "", f"**Setting.** {describe_recipe()}. Machines: {', '.join(cpu) or 'n/a'}.",
         "", "## Table 1 in miniature (mean ± std over seeds; new emoji first)", ""]
    main = [f"{arm}-n{n}-s0" for n in TOKENS for arm in ("textok", "baseline")]
    pending = [r for r in main if not is_converged(curves, r)]
    if pending:
        L += [f"**Not converged on {split_label('val')} by the 0.3 dB rule** ({len(pending)} of the {len(main)} seed-0 runs): "
              "learning-curve points at the budgets shown.", ""]
    L += table1(curves, replicas) + ["", PAPER]
    L += ["", "## Compression: fewer tokens for the same rFID", ""] + compression(curves)
    L += ["", f"## Seeds ({seeded_tokens(curves)})", ""] + seeds_table(curves)
    L += ["", "## Seed 0 against seeds 1 and 2", "", f"Seed 0 trained in stages, seeds 1-2 straight "
          f"([the investigation]({PAGE}#seed-0)).", ""] + seed0_table(curves)
    L += ["", "## Ablations at N = 2 (one seed each; compared on the same machine kind only)", ""] + ablation_table(curves)
    L += ["", "## Status: which runs have converged", ""] + status_table(curves) + (
        ["", "What the rest costs (`python -m studies.emoji32.reproduction --list`; an upper bound):", "", "```text",
         cost, "```"] if cost else [])
    L += ["", "## Convergence: the train probe beside both splits", "",
          f"PSNR on {TRAIN_PROBE} training images (the train probe), on new emoji and on recall; projections "
          "extrapolate the last two gains per doubling (an estimate).", "",
          "![train probe, val and val_unseen PSNR vs steps](../img/reproduction_convergence.png)", ""] \
        + convergence_table(curves, probes or {})
    if replicas:
        L += ["", "## Trained again on another machine", "",
              "Same recipe and seed, another machine (`python -m studies.emoji32.reproduction --job RUN --steps S "
              "--work <folder> --results <folder>`; docs/results/reproduction/replicates/RUN-TAG/).", ""] \
            + replicates_section(list(replicas), curves)
    L += ["", "## The text gain over training (seed 0)", ""] + gain_over_training(curves)
    L += ["", "## Learning curves (N = 2 and N = 8, seed 0)", "",
          "![PSNR and rFID vs steps](../img/reproduction_curves.png)", ""] + curves_table(curves)
    L += ["", "![rFID vs N](../img/reproduction_rfid_vs_n.png)", "",
          "## Figure 1 in miniature", "",
          f"Ten new emoji; rows: originals, then baseline and TexTok at N = 1, 2, 4, 8 (`{COMMAND} --grids`).", "",
          "![original, then baseline / TexTok at N = 1, 2, 4, 8](../img/reproduction_grid.png)", "",
          "N = 2: original | baseline | TexTok | TexTok decoding with the next row's caption "
          "([captions](../img/reproduction_caption_swap.txt)).",
          "", "![caption swap at N = 2](../img/reproduction_caption_swap.png)", "",
          "PSNR per emoji category, seed 0 (written by `--grids` to docs/results/reproduction/by_category.json):",
          ""] + category_table(by_cat or {})
    L += ["", "## Choice of the recipe", ""] + recipe_choice(history)
    L += ["", "## Generation half", "",
          f"Setting and commands: [the study's page]({PAGE}#generation-half) and `studies/emoji32/reproduction_generation.py`.",
          ""] + generation_table(list(generation)) \
        + [line for i, data in enumerate(reliance)
           for line in caption_reliance_table(data, curves, first=i == 0, replicas=replicas)] \
        + generation_pending(curves, list(generation))
    L += ["", "## LPIPS on a share of the batch (TexTok N = 8)", ""] + recipe_check(curves, "lpips_fraction_1.0")
    L += ["", "## The GAN (TexTok N = 2)", ""] + recipe_check(curves, "gan", history)
    cool = cooldown_table(HISTORY)
    if cool:
        L += ["", "## A cool-down at the end of the budget (first recipe)", ""] + cool
    if history:
        L += ["", "## The first recipe's runs (4x4 patches, stopped)", ""] + status_table(history, pending=False)
    return "\n".join(L) + "\n"


def load_twins(data: Path) -> dict | None:
    """``textok data check``'s twin counts of the emoji data, where it is here (the summary's first line)."""
    if not (Path(data) / "captions.jsonl").is_file():
        return None
    from textok.data.check import split_twins

    return {s: {"num_images": t.num_images, "caption_twins": t.caption_twins, "base_twins": t.base_twins,
                "measures": t.measures} for s, t in split_twins(data).items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", default=str(REPO / "docs" / "results" / "reproduction" / "runs"))
    p.add_argument("--history", default=str(HISTORY), help="the first recipe's score files (4x4 patches)")
    p.add_argument("--generation", default=str(GENERATION), help="studies/emoji32/reproduction_generation.py's scores")
    p.add_argument("--out", default=str(REPO / "docs" / "results"))
    p.add_argument("--img", default=str(REPO / "docs" / "img"))
    p.add_argument("--grids", action="store_true")
    p.add_argument("--work", default=str(Path.home() / "textok-study"))
    p.add_argument("--data", default=str(REPO / "data" / "emoji"), help="the emoji data (its twin counts; --grids)")
    p.add_argument("--readme", default=str(REPO / "README.md"), help="whose results-table markers to fill")
    args = p.parse_args()
    finals, curves, probes = load(Path(args.results))
    _, history, _ = load(Path(args.history)) if Path(args.history).is_dir() else ([], [], {})
    out, img = Path(args.out), Path(args.img)
    from textok.io import write_json_atomic, write_text_atomic

    written, by_cat = [], json.loads(BY_CATEGORY.read_text()) if BY_CATEGORY.is_file() else {}
    if args.grids:  # first: the report shows the per-category table they write
        written += grids(curves, Path(args.work), Path(args.data), img)
        by_cat = by_category(curves, Path(args.work), Path(args.data))
        write_json_atomic(BY_CATEGORY, by_cat)
        written.append(BY_CATEGORY)
    generation, replicas = load_generation(Path(args.generation)), load_replicates()
    write_json_atomic(out / "reproduction.json", {"records": finals, "curves": curves,
                                                  "first_recipe_curves": history, "generation": generation,
                                                  "replicates": replicas})
    twins = load_twins(Path(args.data))
    write_text_atomic(out / "reproduction.md", markdown(finals, curves, remaining_cost(Path(args.results)), history,
                                                        generation, probes, by_cat,
                                                        [json.loads(f.read_text()) for f in [RELIANCE] + sorted(
                                                            RELIANCE.parent.glob(RELIANCE_OTHERS)) if f.is_file()],
                                                        replicas, twins))
    summary = out / "reproduction" / "summary.json"
    write_json_atomic(summary, summary_data(curves, twins))
    written += [out / "reproduction.json", out / "reproduction.md", summary] + plots(finals, curves, img, probes)
    for path in written:
        print(f"wrote {path}")
    print(fill_readme(Path(args.readme), results_block(curves)))


if __name__ == "__main__":
    main()
