"""Tables, plots and grids of the reproduction study, generated from its score files.

    python studies/emoji32/reproduction_report.py                  # JSON + Markdown + plots
    python studies/emoji32/reproduction_report.py --grids          # + reconstruction grids (needs the
                                                               #   stage models in --work)

Reads ``docs/results/reproduction/runs/<run>/step_*.json`` (written by
``studies/emoji32/reproduction.py``) and writes
- ``docs/results/reproduction.json``: ``records`` (one per run and split, at the run's latest
  budget: arm, num_tokens, split, seed, steps, rfid, psnr, ssim, lpips, train_seconds, ablation, cpu, threads,
  train_seconds_complete: false where a resumed stage's seconds cover only its last process, null where
  the stage predates that flag)
  and ``curves`` (every budget of every run);
- ``docs/results/reproduction.md``: every table of the report (nothing in it is typed by hand);
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
import re
import statistics
import sys
from collections import defaultdict
from pathlib import Path
from typing import Sequence

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from reproduction import (CONFIG, SIDE_BUDGET, SPLITS, STAGES, TRAIN_PROBE, converged,  # noqa: E402
                          done_stages, remaining_cost, stage_dir, study_runs)

TOKENS = (1, 2, 4, 8)
PAPER = ("The paper (ImageNet, FID-50k protocol): 29.2% average rFID gain at 256 px and 48.1% at 512 px, "
         "37.2% at N = 32 vs 24.2% at N = 256; equal rFID with 2x fewer tokens at 256 px, 4x at 512 px.")


HISTORY = REPO / "docs" / "results" / "reproduction" / "patch4" / "runs"  # the first recipe's runs (4x4 patches)
GENERATION = REPO / "docs" / "results" / "reproduction" / "generation"  # studies/emoji32/reproduction_generation.py
PILOTS = REPO / "docs" / "results" / "reproduction" / "pilots"


def stage_rows(rec: dict, run: str, ablation: str | None = None) -> list[dict]:
    """One row per split of a stage's score file (``reproduction.py``'s step_*.json)."""
    rows = []
    for r in rec["records"]:
        row = {k: r[k] for k in ("arm", "num_tokens", "split", "seed", "steps", "rfid", "psnr", "ssim", "lpips",
                                 "num_images")}
        row.update(run=run, ablation=ablation, train_seconds=r["train_seconds"], cpu=rec.get("cpu"),
                   threads=rec.get("threads"),
                   train_seconds_complete=rec.get("train_seconds_complete"))  # None: before the flag
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


def replicates_section(replicas: list[dict], curves, converged_db: float = 0.3) -> list[str]:
    """Per replicate tag and N: each arm's budgets on that machine beside the study's run at the same budget
    (their difference is run-to-run and machine noise), TexTok minus baseline at the budgets both reached, and the
    study's rule on ``val`` and ``val_unseen`` PSNR for each arm."""
    out = []
    for tag in sorted({r["replicate"] for r in replicas}):
        mine = [r for r in replicas if r["replicate"] == tag]
        for n in sorted({r["num_tokens"] for r in mine}):
            rows = [r for r in mine if r["num_tokens"] == n]
            cpu = " / ".join(sorted({r.get("cpu") or "?" for r in rows}))
            out += ["", f"N = {n}, trained again on {cpu} (`{tag}`):", "",
                    "| run | steps | train probe PSNR | val PSNR | gain | val rFID | val_unseen PSNR | gain "
                    "| val_unseen rFID | train s | the study's run at that budget: val PSNR / rFID, val_unseen PSNR / rFID |",
                    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
            verdicts = []
            for run in sorted({r["run"] for r in rows}, key=lambda x: (not x.startswith("baseline"), x)):
                by = {(r["steps"], r["split"]): r for r in rows if r["run"] == run}
                steps = sorted({st for st, _ in by})
                for st in steps:
                    v, u = by.get((st, "val"), {}), by.get((st, "val_unseen"), {})
                    g = {split: (f"{by[(st, split)]['psnr'] - by[(st // 2, split)]['psnr']:+.2f}"
                                 if (st // 2, split) in by and (st, split) in by else "") for split in SPLITS}
                    sv, su = one(curves, run=run, steps=st, split="val"), one(curves, run=run, steps=st, split="val_unseen")
                    study = (f"{fmt(sv['psnr'])} / {fmt(sv['rfid'], 1)}, {fmt(su and su['psnr'])} / "
                             f"{fmt(su and su['rfid'], 1)} ({sv.get('cpu') or '?'})" if sv else "–")
                    out.append(f"| {run} | {st} | {fmt(v.get('probe'))} | {fmt(v.get('psnr'))} | {g['val']} "
                               f"| {fmt(v.get('rfid'), 1)} | {fmt(u.get('psnr'))} | {g['val_unseen']} "
                               f"| {fmt(u.get('rfid'), 1)} | {fmt(v.get('train_seconds'), 0)} | {study} |")
                parts = []
                for split in SPLITS:
                    psnr = {st: by[(st, split)]["psnr"] for st in steps if (st, split) in by}
                    have = sorted(psnr)
                    if len(have) < 2 or have[-1] != 2 * have[-2]:
                        parts.append(f"{split}: no doubled budget yet")
                        continue
                    yes = converged(psnr, converged_db)
                    parts.append(f"{split} {psnr[have[-1]] - psnr[have[-2]]:+.2f} dB from {have[-2]} to {have[-1]} "
                                 f"steps: {'converged' if yes else 'not converged'} by the {converged_db} dB rule")
                verdicts.append(f"- {run}: " + "; ".join(parts) + ".")
            out += [""] + verdicts
            runs = {r["arm"]: r["run"] for r in rows if r["seed"] == 0 and not r.get("ablation")}
            if {"textok", "baseline"} <= set(runs):
                common = sorted({r["steps"] for r in rows if r["run"] == runs["textok"]}
                                & {r["steps"] for r in rows if r["run"] == runs["baseline"]})
                for st in common:
                    cells = []
                    for split in SPLITS:
                        b = one(rows, run=runs["baseline"], steps=st, split=split)
                        t = one(rows, run=runs["textok"], steps=st, split=split)
                        if b and t:
                            cells.append(f"`{split}` rFID {fmt(b['rfid'], 1)} -> {fmt(t['rfid'], 1)} "
                                         f"({100 * gain(b['rfid'], t['rfid']):.1f}%), PSNR {t['psnr'] - b['psnr']:+.2f} dB")
                    out.append(f"- TexTok minus baseline at {st} steps on this machine: " + "; ".join(cells) + ".")
    return out


def pick(rows, **kw):
    return [r for r in rows if all(r.get(k) == v for k, v in kw.items())]


def one(rows, **kw):
    found = pick(rows, **kw)
    return found[0] if found else None


def fmt(x, d=2):
    return "–" if x is None else f"{x:.{d}f}"


def gain(base, text):
    """Relative rFID gain of TexTok over the baseline (positive = TexTok better)."""
    return None if base is None or text is None else (base - text) / base


def common_budget(curves, runs) -> int | None:
    """The largest budget every one of ``runs`` has reached (arms are compared at equal steps only)."""
    budgets = [{r["steps"] for r in curves if r["run"] == run} for run in runs]
    common = set.intersection(*budgets) if budgets and all(budgets) else set()
    return max(common) if common else None


def main_rows(curves):
    """Seed-0 rows of both arms per N, at the largest budget both arms reached (else each at its latest)."""
    rows = []
    for n in TOKENS:
        pair = (f"textok-n{n}-s0", f"baseline-n{n}-s0")
        s = common_budget(curves, pair)
        for run in pair:
            mine = [r for r in curves if r["run"] == run]
            if mine:
                at = s if s is not None else max(r["steps"] for r in mine)
                rows += [r for r in mine if r["steps"] == at]
    return rows


def table1(curves, replicas: Sequence[dict] = ()) -> list[str]:
    """Both arms per N and split at the largest budget both reached; the average rFID gain; and where a pair was
    trained again on another machine (``replicas``) at a row's budget, its gain beside (the noise of one run)."""
    out = ["| split | N | compression | steps | rFID baseline | rFID TexTok | rFID gain | PSNR baseline | PSNR TexTok "
           "| SSIM baseline | SSIM TexTok | LPIPS baseline | LPIPS TexTok |", "|---|---:|---:|---:|" + "---:|" * 9]
    rows = main_rows(curves)
    gains = defaultdict(list)
    for split in SPLITS:
        for n in TOKENS:
            b, t = one(rows, arm="baseline", num_tokens=n, split=split), one(rows, arm="textok", num_tokens=n, split=split)
            if b is None and t is None:
                continue
            g = gain(b and b["rfid"], t and t["rfid"])
            if g is not None and b["steps"] == t["steps"]:
                gains[split].append(g)
            steps = "/".join(sorted({str(x["steps"]) for x in (b, t) if x}))
            out.append(f"| {split} ({(b or t)['num_images']}) | {n} | {3072 // (8 * n)}x | {steps} | {fmt(b and b['rfid'], 1)} "
                       f"| {fmt(t and t['rfid'], 1)} | {'–' if g is None else f'{100 * g:.1f}%'} | {fmt(b and b['psnr'])} | {fmt(t and t['psnr'])} "
                       f"| {fmt(b and b['ssim'], 4)} | {fmt(t and t['ssim'], 4)} | {fmt(b and b['lpips'], 4)} "
                       f"| {fmt(t and t['lpips'], 4)} |")
    out.append("")
    for split in SPLITS:
        if gains[split]:
            out.append(f"- Average relative rFID gain on `{split}` over the {len(gains[split])} token counts with both "
                       f"arms at the same budget: **{100 * statistics.mean(gains[split]):.1f}%**.")
    for tag in sorted({r["replicate"] for r in replicas}):
        for split in SPLITS:
            for n in TOKENS:
                b, t = one(rows, arm="baseline", num_tokens=n, split=split), one(rows, arm="textok", num_tokens=n, split=split)
                if not (b and t and b["steps"] == t["steps"]):
                    continue
                again = {arm: one(replicas, replicate=tag, run=f"{arm}-n{n}-s0", steps=b["steps"], split=split)
                         for arm in ("baseline", "textok")}
                rb, rt = again["baseline"], again["textok"]
                if rb and rt:
                    out.append(f"- The N = {n} pair trained again on {rb.get('cpu') or '?'} (`{tag}`, same recipe, seed "
                               f"and budget), `{split}`: rFID {fmt(rb['rfid'], 1)} -> {fmt(rt['rfid'], 1)}, a "
                               f"{100 * gain(rb['rfid'], rt['rfid']):.1f}% gain (the row above: "
                               f"{100 * gain(b['rfid'], t['rfid']):.1f}%), PSNR {rt['psnr'] - rb['psnr']:+.2f} dB "
                               f"({t['psnr'] - b['psnr']:+.2f} above): the spread of one run.")
    return out


def gain_by_n(curves, split: str = "val") -> dict[int, float]:
    """N -> TexTok's relative rFID gain on ``split`` in Table 1 (both arms at one budget)."""
    rows, out = main_rows(curves), {}
    for n in TOKENS:
        b, t = one(rows, arm="baseline", num_tokens=n, split=split), one(rows, arm="textok", num_tokens=n, split=split)
        if b and t and b["steps"] == t["steps"]:
            out[n] = gain(b["rfid"], t["rfid"])
    return out


def compression(curves) -> list[str]:
    """The smallest N at which TexTok's rFID is at most the baseline's at N = 8, all at one common budget."""
    runs = ["baseline-n8-s0"] + [f"textok-n{n}-s0" for n in TOKENS]
    steps = common_budget(curves, runs)
    out = []
    for split in SPLITS:
        if steps is None:
            out.append(f"- `{split}`: pending (needs the baseline at N = 8 and TexTok at every N at one common budget).")
            continue
        at = {r["run"]: r for r in curves if r["steps"] == steps and r["split"] == split and r["run"] in runs}
        ref = at["baseline-n8-s0"]
        match = [n for n in TOKENS if at[f"textok-n{n}-s0"]["rfid"] <= ref["rfid"]]
        if match and min(match) < 8:
            n = min(match)
            out.append(f"- `{split}`, all at {steps} steps: TexTok matches the baseline's N = 8 rFID ({ref['rfid']:.1f}) "
                       f"with N = {n} ({8 // n}x fewer tokens; its rFID {at[f'textok-n{n}-s0']['rfid']:.1f}).")
        elif match:  # only N = 8 itself: no saving in tokens, say how far the next smaller N falls short
            out.append(f"- `{split}`, all at {steps} steps: no smaller TexTok N reaches the baseline's N = 8 rFID "
                       f"({ref['rfid']:.1f}): TexTok N = 4 has {at['textok-n4-s0']['rfid']:.1f}; at N = 8 TexTok has "
                       f"{at['textok-n8-s0']['rfid']:.1f}.")
        else:
            out.append(f"- `{split}`, all at {steps} steps: no TexTok N reaches the baseline's N = 8 rFID ({ref['rfid']:.1f}).")
    return out


def is_converged(curves, run: str, converged_db: float = 0.3, split: str = "val") -> bool:
    """Doubling the run's last budget moved its PSNR on ``split`` by less than ``converged_db``."""
    return converged({r["steps"]: r["psnr"] for r in curves if r["run"] == run and r["split"] == split}, converged_db)


def status_table(curves, converged_db: float = 0.3, pending: bool = True) -> list[str]:
    """Each run's budgets so far and whether doubling the last one moved val PSNR < converged_db (the study's
    rule), and val_unseen PSNR (the same rule on the emoji never seen in training)."""
    out = ["| run | budgets done (steps) | val PSNR at the last | change from the previous budget | converged? "
           "| val_unseen change | converged on val_unseen? |",
           "|---|---|---:|---:|---|---:|---|"]
    def split_status(run: str, split: str) -> tuple[list[dict], str, str]:
        """The run's rows on ``split`` by steps, the last doubling's PSNR change and the rule's verdict."""
        rows = sorted((r for r in curves if r["run"] == run and r["split"] == split), key=lambda r: r["steps"])
        if len(rows) < 2:
            return rows, "–", "no (one budget)"
        verdict = "yes" if is_converged(curves, run, converged_db, split) else "no"
        return rows, f"{rows[-1]['psnr'] - rows[-2]['psnr']:+.2f} dB", verdict

    for run in study_runs():
        rows, change, verdict = split_status(run.name, "val")
        if not rows:
            if pending:
                out.append(f"| {run.name} | pending | | | | | |")
            continue
        _, change_u, verdict_u = split_status(run.name, "val_unseen")
        if run.max_stage:  # compared with its main run at equal budgets, not run to convergence
            verdict = (f"side run, stopped at {run.max_stage}" if rows[-1]["steps"] >= run.max_stage
                       else f"side run, to {run.max_stage} steps")
            verdict_u = "–"
        out.append(f"| {run.name} | {', '.join(str(r['steps']) for r in rows)} | {rows[-1]['psnr']:.2f} "
                   f"| {change} | {verdict} | {change_u} | {verdict_u} |")
    return out


def doublings_left(gains: list[float], below: float = 0.3) -> int | None:
    """Doublings until the gain per doubling falls below ``below`` if it keeps shrinking at its last ratio
    (``gains``: the measured gains of consecutive doublings). 0: the last gain already is below; None: the
    gain did not shrink (no projection)."""
    if gains and abs(gains[-1]) < below:
        return 0
    if len(gains) < 2 or gains[-2] <= 0 or not 0 < gains[-1] / gains[-2] < 1:
        return None
    ratio, g, k = gains[-1] / gains[-2], gains[-1], 0
    while g >= below:
        g, k = g * ratio, k + 1
    return k


def convergence_table(curves, probes) -> list[str]:
    """Per main run and budget: PSNR on the training probe, on val and on val_unseen, each doubling's gain,
    and where the gain per doubling would cross the 0.3 dB rule if it kept shrinking at its last ratio."""
    out = ["| run | steps | train probe PSNR | gain | val PSNR | gain | val_unseen PSNR | gain |",
           "|---|---:|---:|---:|---:|---:|---:|---:|"]
    notes, last = [], []  # last: (val - probe, probe gain, val gain, val_unseen gain) at each run's last budget
    for run in (r.name for r in study_runs() if r.max_stage is None):
        by = {(r["steps"], r["split"]): r["psnr"] for r in curves if r["run"] == run}
        steps = sorted({s for s, _ in by})
        if len(steps) < 2:
            continue
        gains = {split: [by[(b, split)] - by[(a, split)] for a, b in zip(steps, steps[1:])] for split in SPLITS}
        for i, st in enumerate(steps):
            probe, before = probes.get((run, st)), probes.get((run, steps[i - 1])) if i else None
            g = {split: f"{gains[split][i - 1]:+.2f}" if i else "" for split in SPLITS}
            g_probe = f"{probe['psnr'] - before['psnr']:+.2f}" if probe and before else ""
            out.append(f"| {run} | {st} | {fmt(probe and probe['psnr'])} | {g_probe} | {by[(st, 'val')]:.2f} "
                       f"| {g['val']} | {by[(st, 'val_unseen')]:.2f} | {g['val_unseen']} |")
        parts = []
        for split in SPLITS:
            k = doublings_left(gains[split])
            if k == 0:
                parts.append(f"{split}: the last doubling gained {gains[split][-1]:+.2f} dB, below 0.3")
            elif k is None and len(gains[split]) < 2:
                parts.append(f"{split}: one doubling so far ({gains[split][-1]:+.2f} dB; no projection)")
            elif k is None:
                parts.append(f"{split}: {gains[split][-2]:+.2f} then {gains[split][-1]:+.2f} dB per doubling, not "
                             "shrinking (no projection)")
            else:
                more = f"{k} more doubling{'s' if k > 1 else ''}"
                parts.append(f"{split}: {gains[split][-2]:+.2f} then {gains[split][-1]:+.2f} dB per doubling; at that "
                             f"ratio below 0.3 dB after {more} (~{steps[-1] * 2 ** k:,} steps)")
        notes.append(f"- {run}: " + "; ".join(parts) + ".")
        probe, before = probes.get((run, steps[-1])), probes.get((run, steps[-2]))
        if probe and before:
            last.append((by[(steps[-1], "val")] - probe["psnr"], probe["psnr"] - before["psnr"],
                         gains["val"][-1], gains["val_unseen"][-1]))
    if len(out) == 2:
        return ["Pending: needs a main run with two budgets."]
    summary = []
    if last:
        d, gp, gv, gu = (statistics.mean(x) for x in zip(*last))
        summary = ["", f"Over the {len(last)} main runs with two budgets, at each run's last budget: val PSNR minus "
                   f"train-probe PSNR {d:+.2f} dB on average; the last doubling gained {gp:+.2f} dB on the train probe, "
                   f"{gv:+.2f} dB on val and {gu:+.2f} dB on val_unseen on average."]
    return out + [""] + notes + summary


def gain_over_training(curves) -> list[str]:
    """TexTok minus baseline (seed 0) at every budget both arms of an N reached: does the gain hold as both train?"""
    out = ["| N | steps | val PSNR gain (dB) | val rFID gain | val_unseen PSNR gain (dB) | val_unseen rFID gain |",
           "|---:|---:|---:|---:|---:|---:|"]
    by = {(r["run"], r["steps"], r["split"]): r for r in curves}
    for n in TOKENS:
        steps = sorted({s for (run, s, _) in by if run == f"textok-n{n}-s0"} &
                       {s for (run, s, _) in by if run == f"baseline-n{n}-s0"})
        for st in steps:
            cells = []
            for split in SPLITS:
                b, t = by[(f"baseline-n{n}-s0", st, split)], by[(f"textok-n{n}-s0", st, split)]
                cells += [f"{t['psnr'] - b['psnr']:+.2f}", f"{100 * gain(b['rfid'], t['rfid']):.1f}%"]
            out.append(f"| {n} | {st} | " + " | ".join(cells) + " |")
    return out if len(out) > 2 else ["Pending: needs both arms of an N at one budget."]


def curves_table(curves) -> list[str]:
    out = ["| N | arm | steps | val PSNR | val rFID | val_unseen PSNR | val_unseen rFID | train s (1 thread) |",
           "|---:|---|---:|---:|---:|---:|---:|---:|"]
    for n in (2, 8):
        for arm in ("baseline", "textok"):
            rows = [r for r in curves if r["run"] == f"{arm}-n{n}-s0"]
            for steps in sorted({r["steps"] for r in rows}):
                v, u = one(rows, steps=steps, split="val"), one(rows, steps=steps, split="val_unseen")
                out.append(f"| {n} | {arm} | {steps} | {fmt(v and v['psnr'])} | {fmt(v and v['rfid'], 1)} "
                           f"| {fmt(u and u['psnr'])} | {fmt(u and u['rfid'], 1)} | {fmt(v and v['train_seconds'], 0)} |")
    return out


def seeded_tokens(curves) -> str:
    """'N = 1, 2 and 8': the token counts trained with more than one seed (the issue asks for N = 2 and 8)."""
    ns = [str(n) for n in sorted({r["num_tokens"] for r in curves if r["ablation"] is None and r["seed"] > 0})]
    if not ns:
        return "none yet"
    return "N = " + (", ".join(ns[:-1]) + " and " + ns[-1] if len(ns) > 1 else ns[0])


def two_std_verdict(diff: float, sd_baseline: float, sd_textok: float) -> str:
    """The issue's rule for a claim: ``diff`` (positive = TexTok better) beyond two of the larger standard deviation."""
    if abs(diff) <= 2 * max(sd_baseline, sd_textok):
        return "no"
    return "yes, TexTok better" if diff > 0 else "yes, baseline better"


def seeds_table(curves) -> list[str]:
    """Mean ± std over the seeds of each arm, all runs of an N at the largest budget they all reached."""
    out = ["| split | N | steps | metric | baseline mean ± std | TexTok mean ± std | seeds | difference | > 2 std? |",
           "|---|---:|---:|---|---|---|---:|---:|---|"]
    for split in SPLITS:
        for n in TOKENS:  # the N with at least 2 seeds per arm (the N = 2 and 8; N = 1 added later)
            runs = sorted({r["run"] for r in curves if r["ablation"] is None and r["num_tokens"] == n})
            steps = common_budget(curves, runs)
            for metric, better in (("rfid", -1), ("psnr", 1), ("lpips", -1)):
                vals = {}
                for arm in ("baseline", "textok"):
                    rows = [r for r in curves if r["run"] in runs and r["arm"] == arm and r["split"] == split
                            and r["steps"] == steps]
                    vals[arm] = [r[metric] for r in rows]
                if min(len(v) for v in vals.values()) < 2:
                    continue
                mb, mt = statistics.mean(vals["baseline"]), statistics.mean(vals["textok"])
                sb, st = statistics.stdev(vals["baseline"]), statistics.stdev(vals["textok"])
                diff = (mt - mb) * better  # positive = TexTok better
                verdict = two_std_verdict(diff, sb, st)
                d = 1 if metric == "rfid" else (2 if metric == "psnr" else 4)
                out.append(f"| {split} | {n} | {steps} | {metric} | {mb:.{d}f} ± {sb:.{d}f} | {mt:.{d}f} ± {st:.{d}f} "
                           f"| {len(vals['baseline'])}/{len(vals['textok'])} | {diff:+.{d}f} | {verdict} |")
    if len(out) == 2:
        out.append("| | | | pending: needs at least 2 seeds per arm at one common budget | | | | | |")
    return out


def ablation_table(curves, steps: int = SIDE_BUDGET) -> list[str]:
    """Every ablation at N = 2 beside both main runs, all at ``steps`` (the side runs' budget), with each
    variant's rFID and PSNR minus the mean of TexTok's seeds, marked where beyond two of their standard deviations."""
    seeds = [r.name for r in study_runs() if r.arm == "textok" and r.num_tokens == 2 and r.ablation is None
             and one(curves, run=r.name, split="val", steps=steps)]  # the seeds scored at ``steps``
    ref = {}  # (split, metric) -> (mean, std) of TexTok's seeds at ``steps``
    for split in SPLITS:
        for metric in ("rfid", "psnr"):
            vals = [v[metric] for v in (one(curves, run=run, split=split, steps=steps) for run in seeds) if v]
            if len(vals) >= 2:
                ref[(split, metric)] = (statistics.mean(vals), statistics.stdev(vals))

    def cells(row, split):
        out = []
        for metric, d in (("rfid", 1), ("psnr", 2)):
            value = "pending" if row is None else fmt(row[metric], d)
            if row is None or (split, metric) not in ref:
                out += [value, "–"]
                continue
            mean, sd = ref[(split, metric)]
            out += [value, f"{row[metric] - mean:+.{d}f}{'*' if abs(row[metric] - mean) > 2 * sd else ''}"]
        return out

    out = ["| variant (N = 2, seed 0) | steps | val rFID | Δ | val PSNR | Δ | val_unseen rFID | Δ | val_unseen PSNR | Δ "
           "| val_unseen LPIPS |", "|---|---:|" + "---:|" * 9]
    base = {"baseline (no text)": "baseline-n2-s0", "TexTok: both, in-context, full caption, dropout 0": "textok-n2-s0"}
    names = list(base.items()) + [(r.ablation, r.name) for r in study_runs()
                                  if r.ablation and r.num_tokens == 2 and r.ablation not in RECIPE_CHECKS]
    for label, run in names:
        v, u = (one(curves, run=run, split=split, steps=steps) for split in SPLITS)
        if v is None:
            out.append(f"| {label} | pending |" + " |" * 9)
            continue
        out.append(f"| {label} | {v['steps']} | {' | '.join(cells(v, 'val') + cells(u, 'val_unseen'))} "
                   f"| {fmt(u and u['lpips'], 4)} |")
    if ref:
        out += ["", f"Δ: the score minus the mean of TexTok's {len(seeds)} seeds at this budget (" + ", ".join(
            f"`{split}` {metric.replace('rfid', 'rFID').replace('psnr', 'PSNR')} {m:.2f} ± {sd:.2f}"
            for (split, metric), (m, sd) in ref.items()) + "); * where it exceeds two of their standard deviations, "
            "the rule the Seeds table applies."]
    return out


# recipe decisions: a variant of one main run, compared with it at equal steps
RECIPE_CHECKS = {
    "lpips_fraction_1.0": ("textok-n8-s0", "textok-n8-s0-lpipsfull", "LPIPS on 8 of 32 images (perceptual_fraction 0.25)",
                           "LPIPS on all 32 images (1.0)"),
    "gan": ("textok-n2-s0", "textok-n2-s0-gan", "no GAN", "GAN from step 1,000 (hinge, LeCAM 1e-4, R1 10 every 16)"),
}


def recipe_check(curves, ablation: str, history=()) -> list[str]:
    """The main run and its variant at every budget both reached, and the difference at the largest (from the
    first recipe's runs, ``history``, until the study's own variant has a budget)."""
    ref, var, ref_label, var_label = RECIPE_CHECKS[ablation]
    if not any(r["run"] == var for r in curves) and any(r["run"] == var for r in history):
        return ["Measured with the first recipe (4x4 patches; the study's own 8x8-patch variant has not run yet):",
                ""] + recipe_check(history, ablation)
    out = ["| recipe | steps | val PSNR | val LPIPS | val rFID | val_unseen rFID | images/s (1 thread, shared machine) "
           "| CPU |", "|---|---:|---:|---:|---:|---:|---:|---|"]
    by = {(r["run"], r["split"], r["steps"]): r for r in curves}
    common = sorted({s for (run, split, s) in by if run == var and split == "val"} &
                    {s for (run, split, s) in by if run == ref and split == "val"})
    def row(label: str, run: str, s: int, rate: bool = True) -> str:
        r, u = by[(run, "val", s)], by.get((run, "val_unseen", s))
        # a run resumed from a checkpoint older than the trainer's seconds count: its seconds are partial
        ips = s * 32 / r["train_seconds"] if (rate and r["train_seconds"]
                                               and r.get("train_seconds_complete") is not False) else None
        return (f"| {label} | {s} | {fmt(r['psnr'])} | {fmt(r['lpips'], 4)} | {fmt(r['rfid'], 1)} "
                f"| {fmt(u and u['rfid'], 1)} | {fmt(ips, 1)} | {r.get('cpu') or '–'} |")

    for s in common:
        out += [row(ref_label, ref, s), row(var_label, var, s)]
    if not common:
        return out + [f"| {var_label} | pending | | | | | | |"]
    # a variant's step may cost more than the main run's (the GAN's does): the main run at twice the steps, where
    # it has that budget, for a comparison at about equal compute
    twice = common[-1] * 2
    c = by.get((ref, "val", twice))
    if c:
        out.append(row(f"{ref_label}, twice the steps", ref, twice, rate=False))
    a, b = by[(ref, "val", common[-1])], by[(var, "val", common[-1])]
    out += ["", f"At {common[-1]} steps the variant is {b['psnr'] - a['psnr']:+.2f} dB val PSNR, "
            f"{b['lpips'] - a['lpips']:+.4f} val LPIPS and {b['rfid'] - a['rfid']:+.1f} val rFID from the main run "
            "(one seed each: compare with the seed spread in the Seeds table)."]
    if c:
        out[-1] += (f" The main run at {twice} steps is {c['psnr'] - b['psnr']:+.2f} dB val PSNR and "
                    f"{c['rfid'] - b['rfid']:+.1f} val rFID from the variant.")
    if a.get("cpu") != b.get("cpu"):  # the study outlives a session, and a session's machine may differ
        out[-1] += (f" The two trained on different machines ({a.get('cpu') or 'unrecorded'}; "
                    f"{b.get('cpu') or 'unrecorded'}): their images/s are not comparable.")
    return out


def describe_recipe() -> str:
    """The model and recipe of ``CONFIG`` in words (for the Setting paragraph)."""
    from textok.training import load_config

    c = load_config(CONFIG)
    m, l, o = c.model, c.loss, c.optim
    share = round(l.perceptual_fraction * o.batch_size)
    return (f"`configs/{CONFIG.name}`: ViT width {m.width}, depth {m.depth} per side, {m.patch_size}x{m.patch_size} "
            f"patches ({m.num_patches} patch tokens), N x {m.token_dim} tokens, {m.latent.upper()} latent, L2 + "
            f"{l.perceptual_weight:g} LPIPS (on {share} of the {o.batch_size} images of each batch) + {l.kl_weight:g} KL, "
            f"{'no GAN' if l.adversarial_weight == 0 else 'GAN'}, Adam lr {o.lr:g} {c.schedule.decay} after "
            f"{c.schedule.warmup_steps} warm-up steps, batch {o.batch_size}, EMA {c.ema.decay:g} (the EMA weights are scored)")


def recipe_choice(history) -> list[str]:
    """The pilots (studies/emoji32/recipe_pilot.py, TexTok N = 2, seed 0) beside the first recipe's own N = 2 run."""
    pilots = {p.stem: json.loads(p.read_text()) for p in sorted(PILOTS.glob("*.json"))}
    if not pilots:
        return []
    steps = sorted({r["steps"] for p in pilots.values() for r in p["records"]})
    out = ["| recipe (TexTok N = 2, seed 0) | s / step | " + " | ".join(f"val PSNR at {s}" for s in steps) + " |",
           "|---|---:|" + "---:|" * len(steps)]
    first = sorted((r for r in history if r["run"] == "textok-n2-s0" and r["split"] == "val"), key=lambda r: r["steps"])
    if first:
        per_step = first[-1]["train_seconds"] / first[-1]["steps"]
        at = {r["steps"]: r["psnr"] for r in first}
        out.append(f"| first recipe: 4x4 patches, width 128 (`configs/emoji32_textok.yaml`) | {per_step:.2f} | "
                   + " | ".join(fmt(at.get(s)) for s in steps) + " |")
    for name, p in pilots.items():
        at = {r["steps"]: r["val_psnr"] for r in p["records"]}
        rate = statistics.median(r["seconds_per_step"] for r in p["records"])
        out.append(f"| pilot `{name}`: `{' '.join(p['records'][0]['overrides'])}` | {rate:.2f} | "
                   + " | ".join(fmt(at.get(s)) for s in steps) + " |")
    return out + ["", "Seconds per step: one thread, with a second one-thread job on the other core (the study's "
                  "condition): the first recipe's from its study run (training seconds / steps over the whole run), the "
                  "pilots' per stage (median). Val PSNR: the EMA model, every image of `val`, the study's protocol."]


def cooldown_table(history_results: Path) -> list[str]:
    """Cool-down branches (reproduction.py --cooldown) beside the constant-lr stage they branch off."""
    out = ["| run | trunk steps | + cool-down | weights | val PSNR | val rFID | val_unseen PSNR | val_unseen rFID |",
           "|---|---:|---:|---|---:|---:|---:|---:|"]
    found = False
    for path in sorted(Path(history_results).glob("*/cooldown_*.json")):
        rec = json.loads(path.read_text())
        trunk = json.loads((path.parent / f"step_{rec['trunk_steps']:07d}.json").read_text())
        rows = [("constant lr (trunk)", "ema", {r["split"]: r for r in trunk["records"]})]
        for w in ("ema", "raw"):
            rows.append((f"+{rec['cooldown_steps']} linear to 0", w,
                         {r["split"]: r for r in rec["records"] if r["weights"] == w}))
        for label, w, by in rows:
            v, u = by.get("val"), by.get("val_unseen")
            out.append(f"| {rec['run']} | {rec['trunk_steps']} | {label} | {w} | {fmt(v and v['psnr'])} "
                       f"| {fmt(v and v['rfid'], 1)} | {fmt(u and u['psnr'])} | {fmt(u and u['rfid'], 1)} |")
        found = True
    return out if found else []


def plots(finals, curves, img: Path, probes=None) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    rows = main_rows(curves)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharey=True)
    for ax, split in zip(axes, SPLITS):
        for arm, style in (("baseline", "o--"), ("textok", "s-")):
            pts = sorted((r["num_tokens"], r["rfid"]) for r in pick(rows, arm=arm, split=split))
            if pts:
                ax.plot(*zip(*pts), style, label="TexTok" if arm == "textok" else "baseline (no text)")
        ax.set_xscale("log", base=2)
        ax.set_xticks(TOKENS, [str(n) for n in TOKENS])
        ax.set_xlabel("tokens N (x 8 channels)")
        ax.set_title(f"emoji 32 px, {split}")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("rFID (all images of the split)")
    axes[0].legend()
    budgets = sorted({r["steps"] for r in rows})
    fig.suptitle(f"each run at its latest budget ({', '.join(map(str, budgets))} steps; status in reproduction.md)",
                 fontsize=9)
    fig.tight_layout()
    img.mkdir(parents=True, exist_ok=True)
    fig.savefig(img / "reproduction_rfid_vs_n.png", dpi=110)
    written.append(img / "reproduction_rfid_vs_n.png")
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for n, style in ((2, "-"), (8, "--")):
        for arm, marker in (("baseline", "o"), ("textok", "s")):
            for ax, metric in zip(axes, ("psnr", "rfid")):
                pts = sorted((r["steps"], r[metric]) for r in curves
                             if r["run"] == f"{arm}-n{n}-s0" and r["split"] == "val")
                if pts:
                    ax.plot(*zip(*pts), style + marker, label=f"{'TexTok' if arm == 'textok' else 'baseline'} N={n}")
    for ax, label in zip(axes, ("val PSNR (dB)", "val rFID")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("optimiser steps (x 32 images)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(img / "reproduction_curves.png", dpi=110)
    written.append(img / "reproduction_curves.png")
    plt.close(fig)

    # what each split measures: train probe, val and val_unseen PSNR of the main runs with the most budgets
    probes = probes or {}
    mains = [r.name for r in study_runs() if r.max_stage is None]
    depth = {run: len({r["steps"] for r in curves if r["run"] == run}) for run in mains}
    shown = [run for run in mains if depth[run] >= 2 and depth[run] == max(depth.values())]
    if shown:
        fig, axes = plt.subplots(1, len(shown), figsize=(4.2 * len(shown), 3.4), sharey=True, squeeze=False)
        for ax, run in zip(axes[0], shown):
            steps = sorted({r["steps"] for r in curves if r["run"] == run})
            for label, style, ys in (
                    ("train probe", "^:", [probes.get((run, s), {}).get("psnr") for s in steps]),
                    ("val", "o-", [one(curves, run=run, steps=s, split="val")["psnr"] for s in steps]),
                    ("val_unseen", "s--", [one(curves, run=run, steps=s, split="val_unseen")["psnr"] for s in steps])):
                pts = [(s, y) for s, y in zip(steps, ys) if y is not None]
                if pts:
                    ax.plot(*zip(*pts), style, label=label)
            ax.set_xscale("log", base=2)
            ax.set_xlabel("optimiser steps (x 32 images)")
            ax.set_title(run, fontsize=9)
            ax.grid(alpha=0.3)
        axes[0][0].set_ylabel("PSNR (dB)")
        axes[0][0].legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(img / "reproduction_convergence.png", dpi=110)
        written.append(img / "reproduction_convergence.png")
        plt.close(fig)
    return written


def grids(curves, work: Path, data: Path, img: Path) -> list[Path]:
    """Reconstruction grids from the stage models kept in ``work`` (each pair at its common budget)."""
    import torch

    from textok import TexTok
    from textok.data import load_text_cache, open_dataset
    from textok.data.transforms import make_grid, to_pil
    from textok.inference import text_condition

    ds = open_dataset(data, split="val_unseen", image_size=32, train=False)
    picks = [int(i) for i in torch.linspace(0, len(ds) - 1, 10).long()]
    items = [ds[i] for i in picks]
    images = torch.stack([it["image"] for it in items])
    captions = [it["caption"] for it in items]
    cache = load_text_cache(data, "minilm")

    def model_of(run: str):
        rec = one(main_rows(curves), run=run, split="val")
        if rec is None:
            return None
        path = stage_dir(work, run, rec["steps"])
        return TexTok.from_pretrained(path).eval() if path.is_dir() else None

    @torch.no_grad()
    def rec(model, caps, decode_caps=None):
        text = text_condition(model, caps, len(caps), cache)
        tokens = model.encode(images, text)
        dtext = text if decode_caps is None else text_condition(model, decode_caps, len(caps), cache)
        return model.decode(tokens, dtext).clamp(-1, 1)

    written = []
    img.mkdir(parents=True, exist_ok=True)
    rows = [images]
    for n in TOKENS:
        for arm in ("baseline", "textok"):
            m = model_of(f"{arm}-n{n}-s0")
            if m is not None:
                rows.append(rec(m, captions))
    if len(rows) > 1:
        to_pil(make_grid(torch.cat(rows), nrow=len(items))).save(img / "reproduction_grid.png")
        written.append(img / "reproduction_grid.png")
    base, text = model_of("baseline-n2-s0"), model_of("textok-n2-s0")
    if base is not None and text is not None:
        swapped = captions[1:] + captions[:1]  # each image decoded with its neighbour's caption
        cols = [images, rec(base, captions), rec(text, captions), rec(text, captions, swapped)]
        grid = torch.stack(cols, dim=1).reshape(-1, *images.shape[1:])  # one row per image
        to_pil(make_grid(grid, nrow=4)).save(img / "reproduction_caption_swap.png")
        (img / "reproduction_caption_swap.txt").write_text(
            "rows: val_unseen emoji; columns: original | baseline N=2 | TexTok N=2 | TexTok N=2 decoding the same "
            "tokens with the next row's caption\n" + "\n".join(f"{a}  ->  decoded with: {b}" for a, b in zip(captions, swapped)) + "\n")
        written.append(img / "reproduction_caption_swap.png")
    return written


BY_CATEGORY = REPO / "docs" / "results" / "reproduction" / "by_category.json"  # written with --grids


def by_category(curves, work: Path, data: Path) -> dict:
    """Per-image PSNR of both arms of every N (seed 0, each pair at its Table 1 budget) on every image of
    both splits, averaged per emoji category; and TexTok decoding its own tokens with another emoji's
    caption. Reads the stage models kept in ``work``."""
    import torch

    from textok import TexTok
    from textok.data import load_text_cache, open_dataset
    from textok.inference import text_condition
    from textok.metrics import psnr

    entries = [json.loads(line) for line in (data / "captions.jsonl").read_text().splitlines() if line.strip()]
    category = {e["file"]: e["category"] for e in entries}
    cache = load_text_cache(data, "minilm")
    out = {"pairs": [], "note": "mean PSNR (dB) of uint8 reconstructions per category; 'swapped': TexTok decoding "
                                "its tokens with another emoji's caption (half-way round the split's sorted distinct "
                                "captions)"}
    for n in TOKENS:
        rows = {r["run"]: r for r in main_rows(curves) if r["num_tokens"] == n and r["split"] == "val"}
        pair = [rows.get(f"{arm}-n{n}-s0") for arm in ("baseline", "textok")]
        if None in pair or pair[0]["steps"] != pair[1]["steps"]:
            continue
        steps = pair[0]["steps"]
        paths = [stage_dir(work, r["run"], steps) for r in pair]
        if not all(p.is_dir() for p in paths):
            continue
        base, text = (TexTok.from_pretrained(p).eval() for p in paths)
        record = {"num_tokens": n, "steps": steps, "splits": {}}
        for split in SPLITS:
            ds = open_dataset(data, split=split, image_size=base.config.image_size, train=False)
            items = [ds[i] for i in range(len(ds))]
            images = torch.stack([it["image"] for it in items])
            caps = [it["caption"] for it in items]
            # another emoji's caption: half-way round the sorted distinct captions (val_unseen holds both styles of
            # each emoji, so shifting the images instead would often land on the same emoji's caption)
            uniq = sorted(set(caps))
            shift = {c: uniq[(i + len(uniq) // 2) % len(uniq)] for i, c in enumerate(uniq)}
            others = [shift[c] for c in caps]
            scores = {"baseline": [], "textok": [], "swapped": []}
            with torch.no_grad():
                for lo in range(0, len(items), 128):
                    x, c, o = images[lo:lo + 128], caps[lo:lo + 128], others[lo:lo + 128]
                    own, other = text_condition(text, c, len(c), cache), text_condition(text, o, len(o), cache)
                    tokens = text.encode(x, own)
                    for name, rec in (("baseline", base.decode(base.encode(x, None), None)),
                                      ("textok", text.decode(tokens, own)), ("swapped", text.decode(tokens, other))):
                        scores[name].append(psnr(x, rec))  # on uint8-rounded images, as the study scores
            scores = {k: torch.cat(v) for k, v in scores.items()}
            cats = [category[it["key"]] for it in items]
            table = {}
            for cat in sorted(set(cats)) + ["all"]:
                idx = torch.tensor([i for i, c in enumerate(cats) if cat in ("all", c)])
                table[cat] = {"count": len(idx), **{k: float(v[idx].mean()) for k, v in scores.items()}}
            record["splits"][split] = table
        out["pairs"].append(record)
    return out


def category_table(by_cat: dict) -> list[str]:
    """TexTok minus baseline PSNR per category and N, and what a wrong caption costs TexTok, per split."""
    pairs = by_cat.get("pairs", [])
    if not pairs:
        return ["Pending: `python studies/emoji32/reproduction_report.py --grids` writes it from the stage models."]
    out = []
    for split in SPLITS:
        head = " | ".join(f"N = {p['num_tokens']} ({p['steps']})" for p in pairs)
        out += ["", f"`{split}`: TexTok minus baseline PSNR (dB), per category (images); last row: TexTok decoding "
                "its own tokens with another emoji's caption, minus with its own", "",
                f"| category | images | {head} |", "|---|---:|" + "---:|" * len(pairs)]
        for cat in pairs[0]["splits"][split]:
            cells = [p["splits"][split][cat] for p in pairs]
            out.append(f"| {'**all**' if cat == 'all' else cat} | {cells[0]['count']} | "
                       + " | ".join(f"{c['textok'] - c['baseline']:+.2f}" for c in cells) + " |")
        cells = [p["splits"][split]["all"] for p in pairs]
        out.append("| *wrong caption* (all) | " + f"{cells[0]['count']} | "
                   + " | ".join(f"{c['swapped'] - c['textok']:+.2f}" for c in cells) + " |")
    return out[1:]


def load_generation(folder: Path) -> list[dict]:
    """The score files of studies/emoji32/reproduction_generation.py (one per task x arm x N x tokenizer budget)."""
    return [json.loads(p.read_text()) for p in sorted(Path(folder).glob("*.json"))] if Path(folder).is_dir() else []


def generation_table(records: list[dict]) -> list[str]:
    """Both arms side by side per task, N, tokenizer budget and DiT budget (a DiT learning curve: one row
    per budget); the gFID gain as the paper states it."""
    if not records:
        return ["Pending: it runs on converged tokenizers (`python studies/emoji32/reproduction_generation.py "
                "--num-tokens 4`; its scores go to docs/results/reproduction/generation/)."]
    pools = resampled_table(records, "pool") + resampled_table(records, "cycle")
    # the held-out pool and a random draw from it everywhere else
    records = [r for r in records if not r.get("caption_pool") and not r.get("caption_choice")]
    noise = sampling_noise([r for r in records if not r.get("dit_seed")])
    trained = training_noise([r for r in records if not r.get("sample_seed")])
    records = [r for r in records if not r.get("sample_seed") and not r.get("dit_seed")]  # the comparison: seeds 0
    out = ["| task | N | tokenizer steps | DiT steps | DiTs trained on | samples | reference | gFID baseline | gFID TexTok "
           "| gFID gain | precision baseline / TexTok | recall baseline / TexTok |",
           "|---|---:|---:|---:|---|---:|---|" + "---:|" * 5]
    key = lambda r: (r["task"], r["num_tokens"], r["tokenizer_steps"], r.get("tag") or "", r["dit_steps"])  # noqa: E731
    for k in sorted({key(r) for r in records}):
        by = {r["arm"]: r for r in records if key(r) == k}
        b, t = (by.get(arm, {}).get("report", {}) for arm in ("baseline", "textok"))
        any_ = next(iter(by.values()))
        g = gain(b.get("gfid"), t.get("gfid"))
        ref = f"{any_['reference']} ({any_['report'].get('ref_num', '?')} images)"
        task, n, steps, _, dit_steps = k
        device = " / ".join(sorted({r.get("dit_device") or "?" for r in by.values()}))
        out.append(f"| {task} | {n} | {steps} | {dit_steps} | {device} | {any_['num_samples']} | {ref} "
                   f"| {fmt(b.get('gfid'), 1)} | {fmt(t.get('gfid'), 1)} | {'–' if g is None else f'{100 * g:.1f}%'} "
                   f"| {fmt(b.get('precision'), 3)} / {fmt(t.get('precision'), 3)} "
                   f"| {fmt(b.get('recall'), 3)} / {fmt(t.get('recall'), 3)} |")
    out += ["", "`mixed_precision=auto`: bf16 autocast on a GPU, fp32 on a CPU without AMX; every sample set is "
            "scored on the CPU. The rows of one task and device are one DiT run at several budgets (its learning curve); "
            "the same budget on two devices is two runs of the same recipe and seed (a replicate: their difference is "
            "run-to-run noise)."]
    shipped = sorted({r.get("dit_device") or "?" for r in records if (r.get("tokenizer_weights") or "").startswith("float16")})
    if shipped:
        out += ["", f"Rows trained on {', '.join(shipped)}: the tokenizers are the shipped pair (`--tokenizers shipped`: "
                "float16 weights of the same stage models, loaded as float32; their val scores equal the study's to the "
                "printed digits, see the README's demo), so their latent caches differ from the other rows' by that "
                "rounding only."]
    out += noise + trained + pools
    grids: dict[tuple, dict] = {}  # one per task, N and arm: the longest-trained DiT's
    for r in sorted((r for r in records if r.get("grid")), key=lambda r: r["dit_steps"]):
        grids[(r["task"], r["num_tokens"], r.get("tag") or "", r["arm"])] = r
    for _, r in sorted(grids.items()):
        out += ["", f"{r['task']}, {r['arm']}, N = {r['num_tokens']}, DiT {r['dit_steps']} steps on "
                f"{r.get('dit_device') or '?'}: ![{r['task']} {r['arm']}](../img/{r['grid']})"]
    return out


# DiTs re-sampled with another way of decoding the class-conditional samples (nothing trained): the record's
# field and value, the column name, the paragraph above the table
RESAMPLED = {
    "pool": ("caption_pool", "train", "train pool",
             "Caption pool: the same class-conditional DiT, sampled with the same seed, decoded with captions drawn from "
             "the training captions of each class instead of the held-out ones (`--caption-pool train --tasks class "
             "--arms textok`); the baseline decodes without text, so its score is the same under either pool."),
    "cycle": ("caption_choice", "cycle", "cycle-chosen",
              "Caption choice: the same class-conditional DiT, sampled with the same seed, decoded with the held-out "
              "caption of the class that best explains each sample's tokens (the lowest cycle error, "
              "`TexTok.cycle_error`: decode, re-encode with the same caption, compare the tokens) instead of one "
              "drawn at random (`--caption-choice cycle --tasks class --arms textok`, i.e. `textok sample-fid "
              "--caption-choice cycle`); the baseline decodes without text, so its score is the same either way."),
}


def resampled_table(records: list[dict], variant: str) -> list[str]:
    """The class-conditional TexTok DiTs re-sampled with another decoding (``RESAMPLED[variant]``) beside the same DiT
    decoded as usual (a random draw from the held-out pool), and the baseline's DiT of that budget."""
    field, value, name, text = RESAMPLED[variant]
    usual = lambda x: not x.get("caption_pool") and not x.get("caption_choice")  # noqa: E731
    rows = []
    for r in sorted((r for r in records if r.get(field) == value),
                    key=lambda r: (r["num_tokens"], r.get("tag") or "", r["dit_steps"], r.get("dit_seed") or 0)):
        same = lambda x: all(x.get(k) == r.get(k) for k in ("task", "num_tokens", "tokenizer_steps", "dit_steps",  # noqa: E731
                                                             "tag", "dit_seed", "sample_seed"))
        held = {x["arm"]: x["report"] for x in records if same(x) and usual(x)}
        b, h, t = held.get("baseline", {}), held.get(r["arm"], {}), r["report"]
        rows.append(f"| {r['task']} | {r['num_tokens']} | {r['dit_steps']} | {r.get('dit_seed') or 0} "
                    f"| {r.get('dit_device') or '?'} | {r['arm']} "
                    + "".join(f"| {fmt(x.get(m), d)} " for m, d in (("gfid", 1), ("precision", 3), ("recall", 3))
                              for x in (h, t))
                    + f"| {fmt(b.get('gfid'), 1)} |")
    if not rows:
        return []
    # every DiT seed re-sampled this way against the baseline's DiTs of that budget (usual decoding: it has no text)
    seeds = training_noise([r for r in records if r["arm"] == "baseline" and usual(r) and not r.get("sample_seed")]
                           + [dict(r, arm="textok") for r in records if r.get(field) == value and not r.get("sample_seed")],
                           intro=f"The baseline's DiTs against TexTok's same DiTs decoded this way ({name}), over DiT seeds:",
                           textok=f"TexTok ({name})")
    return ["", text, "",
            f"| task | N | DiT steps | DiT seed | DiT trained on | arm | gFID usual | gFID {name} | precision usual "
            f"| precision {name} | recall usual | recall {name} | gFID baseline |",
            "|---|---:|---:|---:|---|---|" + "---:|" * 7] + rows + seeds


RELIANCE = REPO / "docs" / "results" / "reproduction" / "caption_reliance.json"  # studies/emoji32/caption_reliance.py
RELIANCE_OTHERS = "caption_reliance_n*.json"  # the same at other N, beside it (--out)


def caption_reliance_table(data: dict, curves=(), first: bool = True, replicas: Sequence[dict] = ()) -> list[str]:
    """The tokenizer pair with TexTok decoding its tokens with its own caption, another caption of the same class
    and a caption of another class (``studies/emoji32/caption_reliance.py``): what the class-conditional
    pipeline's decoding with a caption of the class costs before any DiT is involved. A file measured without
    the baseline (``--baseline none``) gets the baseline of that N trained again on the file's machine to the
    TexTok's budget where ``replicas`` hold one, else Table 1's baseline of that N at its largest budget (from
    ``curves``); ``first``: the table that explains the columns (the next ones say only what differs)."""
    records = data.get("records", [])
    if not records:
        return []
    cell = {(r["split"], r["arm"], r["decode"]): r for r in records}
    n = records[0].get("num_tokens")
    table1, theirs = "", []
    budget = re.search(r"step_0*(\d+)", (data.get("tokenizers") or {}).get("textok") or "")
    again = [r for r in replicas if r["run"] == f"baseline-n{n}-s0" and r.get("cpu") == data.get("cpu")
             and budget and r["steps"] == int(budget.group(1))]
    if not any(r["arm"] == "baseline" for r in records) and again:
        for split in dict.fromkeys(r["split"] for r in records):
            b = one(again, split=split)
            if b:
                cell[(split, "baseline", "own")] = b
        table1 = (f" TexTok and the baseline were both trained again on this machine ({data.get('cpu')}; the study's "
                  f"recipe and seed, `python studies/emoji32/reproduction.py --job A-n{n}-s0 --steps {budget.group(1)}` for A = textok, baseline; see "
                  f"\"Trained again on another machine\"); the file was measured without the baseline (`--baseline "
                  f"none`), whose column is the baseline's own score file at that budget (`{again[0]['replicate']}`).")
    elif not any(r["arm"] == "baseline" for r in records):
        for split in dict.fromkeys(r["split"] for r in records):
            base = [r for r in curves if r["run"] == f"baseline-n{n}-s0" and r["split"] == split]
            if base:
                b = max(base, key=lambda r: r["steps"])
                cell[(split, "baseline", "own")] = b
                theirs += [f"{split} rFID {fmt(r['rfid'], 1)}, PSNR {fmt(r['psnr'])} dB" for r in curves
                           if r["run"] == f"textok-n{n}-s0" and r["split"] == split and r["steps"] == b["steps"]]
                table1 = (f" This TexTok was trained again on this machine (the study's recipe and seed, "
                          f"`python studies/emoji32/reproduction.py --job textok-n{n}-s0 --steps {b['steps']}`; its stage "
                          f"models had not been kept) and measured without the baseline (`--baseline none`): the "
                          f"baseline column is Table 1's `baseline-n{n}-s0` at {b['steps']} steps ({b.get('cpu') or '?'})")
        if table1:
            table1 += (f"; Table 1's TexTok of that budget, for comparison with the retrained one: {'; '.join(theirs)}"
                       if theirs else "") + "."
    present = {r["decode"] for r in records}
    cols = [("baseline", "own"), ("textok", "own")] + [
        ("textok", d) for d in ("same-class", "same-class-random", "same-class-cycle", "other-class") if d in present]
    heads = {"own": "TexTok, own caption", "same-class": "TexTok, the next caption of the class (sort order)",
             "same-class-random": "TexTok, a random caption of the class",
             "same-class-cycle": "TexTok, the caption of the class chosen by cycle error",
             "other-class": "TexTok, a caption of another class"}
    intro = [] if first else [
        "", f"The same at N = {n} ({data.get('pair', '?')}; `{data.get('command', '?')}`; {data.get('cpu', '?')}, "
            f"{data.get('threads', '?')} thread{'' if data.get('threads') == 1 else 's'}, {data.get('date', '?')})."
            + table1]
    out = ["", "What decoding with a caption of the class costs the tokenizer itself (no DiT involved): TexTok encodes "
           "each held-out image with its own caption and decodes the tokens with its own caption, with another caption "
           "of the same class (the next distinct one in sort order among the split's captions of that class, which "
           "often shares words with the image's own; or one drawn at random, as the class-conditional pipeline's "
           "detokenizer draws from its pool; or, of up to 16 captions of the class, the one under which decoding "
           "and re-encoding moves the tokens least, as `--caption-choice cycle` picks) or with a caption of another "
           f"class (`{data.get('command', 'python studies/emoji32/caption_reliance.py')}`, i.e. `textok eval-tokenizer "
           "--decode-captions same-class|same-class-random|same-class-cycle|other-class`; "
           f"{data.get('pair', 'the shipped N = 4 pair')}; "
           f"{data.get('cpu', '?')}, {data.get('threads', '?')} thread{'' if data.get('threads') == 1 else 's'}, "
           f"{data.get('date', '?')}). "
           "rFID over all images of the split, including those whose class holds a single distinct caption "
           "(they keep it: the count swapped is given)." + table1, ""]
    out = (out if first else intro + [""]) + [
           "| split | metric | baseline | " + " | ".join(heads[d] for _, d in cols[1:]) + " |",
           "|---|---|" + "---:|" * len(cols)]
    for split in dict.fromkeys(r["split"] for r in records):
        row = [cell.get((split, arm, dec), {}) for arm, dec in cols]
        for metric, label, digits in (("rfid", "rFID", 1), ("psnr", "PSNR (dB)", 2), ("lpips", "LPIPS", 3)):
            out.append(f"| {split} | {label} | "
                       + " | ".join(fmt(c.get(metric), digits) for c in row) + " |")
        out.append(f"| {split} | images swapped | – | 0 of {row[1].get('num_images', '?')} | "
                   + " | ".join(f"{c.get('swapped', '?')} of {c.get('num_images', '?')}" for c in row[2:]) + " |")
    if first and (REPO / "docs" / "img" / "reproduction_caption_reliance.png").is_file():
        out += ["", "Eight `val` emoji whose class holds another caption: original | baseline | TexTok | TexTok decoding the "
                "same tokens with a random caption of the class | with the caption of the class chosen by cycle error | "
                "with a caption of another class (`--grid`; the captions: "
                "[reproduction_caption_reliance.txt](../img/reproduction_caption_reliance.txt)).", "",
                '<img src="../img/reproduction_caption_reliance.png" width="220" alt="caption reliance at N = 4">']
    return out


def sampling_noise(records: list[dict]) -> list[str]:
    """gFID of the same DiT sampled with several seeds (``--sample-seed``): the noise of one sample set."""
    by = defaultdict(dict)
    for r in records:
        key = (r["task"], r["num_tokens"], r["tokenizer_steps"], r["dit_steps"], r.get("dit_device") or "?",
               r.get("tag") or "", r["arm"])
        by[key][r.get("sample_seed") or 0] = r["report"]["gfid"]
    rows = [(k, v) for k, v in sorted(by.items()) if len(v) > 1]
    if not rows:
        return []
    out = ["", "Sampling noise: the same DiT sampled again with other seeds (`--sample-seed S`), every other setting "
           "equal. A gFID difference between the arms smaller than this spread is within the noise of one sample set.",
           "", "| task | N | DiT steps | DiT trained on | arm | gFID per sampling seed | spread (max - min) | spread / mean |",
           "|---|---:|---:|---|---|---|---:|---:|"]
    for (task, n, _, steps, device, _, arm), v in rows:
        values = list(v.values())
        spread, mean = max(values) - min(values), sum(values) / len(values)
        per = ", ".join(f"{seed}: {g:.1f}" for seed, g in sorted(v.items()))
        out.append(f"| {task} | {n} | {steps} | {device} | {arm} | {per} | {spread:.1f} | {100 * spread / mean:.1f}% |")
    return out


NOISE_INTRO = ("DiT-training noise: the same recipe trained again on the same tokens with another seed "
               "(`--dit-seed S`), or with the same seed on another device, each sampled with seed 0. A claim needs the "
               "difference of the means to exceed two standard deviations of either arm (the issue's rule for seeds).")


def training_noise(records: list[dict], intro: str = NOISE_INTRO, textok: str = "TexTok") -> list[str]:
    """gFID of independent DiT trainings of one recipe on the same tokens (``--dit-seed``, and the same seed
    trained on two devices), sampled with seed 0: mean ± std per arm, and the issue's rule for a claim (the
    difference of the means exceeds two standard deviations of either arm). ``textok``: the TexTok column's name."""
    by = defaultdict(lambda: defaultdict(list))
    for r in records:
        key = (r["task"], r["num_tokens"], r["tokenizer_steps"], r["dit_steps"])
        by[key][r["arm"]].append((r.get("dit_seed") or 0, r.get("dit_device") or "?", r["report"]["gfid"]))
    rows = [(k, v) for k, v in sorted(by.items()) if min(len(v.get(a, ())) for a in ("baseline", "textok")) >= 2]
    if not rows:
        return []
    out = ["", intro,
           "", "| task | N | DiT steps | baseline gFID per DiT (seed, device) | baseline mean ± std "
           f"| {textok} gFID per DiT | {textok} mean ± std | gain of the means | > 2 std? |",
           "|---|---:|---:|---|---|---|---|---:|---|"]
    short = lambda d: " ".join(re.sub(r"\(R\)|NVIDIA|Processor", "", d).split())  # noqa: E731  (H100 80GB HBM3, Intel Xeon)
    for (task, n, _, steps), v in rows:
        cells, stats = [], {}
        for arm in ("baseline", "textok"):
            runs = sorted(v[arm])
            g = [x[2] for x in runs]
            stats[arm] = (statistics.mean(g), statistics.stdev(g))
            cells += [", ".join(f"{x[2]:.1f} ({x[0]}, {short(x[1])})" for x in runs),
                      f"{stats[arm][0]:.1f} ± {stats[arm][1]:.1f}"]
        (mb, sb), (mt, st) = stats["baseline"], stats["textok"]
        verdict = two_std_verdict(mb - mt, sb, st)  # lower gFID is better
        out.append(f"| {task} | {n} | {steps} | {' | '.join(cells)} | {100 * gain(mb, mt):.1f}% | {verdict} |")
    return out


def generation_pending(curves, records: list[dict]) -> list[str]:
    """What the generation half still lacks: a planned N (the largest rFID gain, and 4) with no DiT, or a
    task with a single DiT budget (no learning curve yet)."""
    gains = gain_by_n(curves)
    planned = sorted({max(gains, key=gains.get), 4} if gains else {4})
    missing = [f"N = {n}" for n in planned if not any(r["num_tokens"] == n for r in records)]
    budgets = defaultdict(set)  # of one run: one tag (one device)
    for r in records:
        budgets[(r["task"], r["num_tokens"], r.get("tag") or "")].add(r["dit_steps"])
    runs = defaultdict(int)  # (task, N) -> the most budgets any one run of it has
    for (task, n, _), b in budgets.items():
        runs[(task, n)] = max(runs[(task, n)], len(b))
    single = [f"{task} at N = {n}" for (task, n), most in sorted(runs.items()) if most < 2]
    out = []
    if missing:
        out.append(f"- Pending: the DiTs at {', '.join(missing)}.")
    if single:
        out.append(f"- Pending: a second DiT budget (the learning curve) for {', '.join(single)}; until then these "
                   "rows are single points, not a converged comparison.")
    return [""] + out if out else []


def markdown(finals, curves, cost: str | None = None, history=(), generation=(), probes=None,
             by_cat: dict | None = None, reliance: Sequence[dict] = (), replicas: Sequence[dict] = ()) -> str:
    cpu = sorted({r["cpu"] for r in finals + list(history) if r.get("cpu")})
    L = ["# Reproduction: the paper's Table 1 in miniature", "",
         "Generated by `python studies/emoji32/reproduction_report.py` from the score files of "
         "`python studies/emoji32/reproduction.py` (docs/results/reproduction/runs/; the first recipe's: "
         "docs/results/reproduction/patch4/runs/; the pilots': docs/results/reproduction/pilots/); do not edit by hand.",
         "", "**Setting.** Emoji at 32 px (Google + Twitter styles, captions \"name; category, subcategory\"), "
         f"{describe_recipe()}. TexTok: text in the tokenizer "
         "and the detokenizer, in-context, frozen all-MiniLM-L6-v2. Baseline: the identical model and recipe "
         f"without text. Budgets double ({', '.join(f'{s // 1000}k' for s in STAGES[:3])}, ... steps) until doubling "
         "changes val PSNR by less than 0.3 dB. The extra seeds and the ablations are \"side runs\": each is "
         f"trained to one fixed budget, {SIDE_BUDGET} steps, and compared with the main runs at that budget "
         "(see Seeds).",
         "",
         "**Protocol.** Every image of the split: `val` (new images of emoji seen in training: the paper's setting), "
         "`val_unseen` (emoji never seen in training). rFID: reconstructions rounded to uint8 vs the same originals, "
         "TF-Inception pool3 (ADM / torch-fidelity preprocessing); with 652-692 images it is biased upward and only "
         "comparable within this report. Captions: the data set's own (the names), the same for both splits. "
         f"Machine: {', '.join(cpu) or 'n/a'}, one thread per run, two runs at a time; training seconds are wall "
         "times with the two cores shared by both runs and, at times, by test suites: read them as rough.", "",
         "## Choice of the recipe", "",
         "The study began with 4x4 patches (`configs/emoji32_textok.yaml`, 64 patch tokens). Its runs improved by "
         "1.2-1.8 dB val PSNR per doubling of the budget up to 8k steps, so convergence by the 0.3 dB rule was "
         "tens of core-hours per run away. Two cheaper models were piloted on TexTok N = 2 "
         "(`studies/emoji32/recipe_pilot.py`), and the study restarted with the one that was at least as good at equal "
         "steps for about a third of the cost per step:", ""] + recipe_choice(history) + [
         "", "## Status: which runs have converged", "",
         "A result from an under-trained model is not a result: until a run's row says converged, its numbers "
         "below are a learning-curve point, not a verdict on the text gain. The study's rule is the issue's, on "
         "`val` PSNR; the last two columns apply the same rule to `val_unseen` (emoji never seen in training), whose "
         "PSNR levels off far sooner (next section): on `val` the rule is out of reach on this machine.",
         ""] + status_table(curves) + (
            ["", "What the rest of the study costs on this machine (`python studies/emoji32/reproduction.py --list`; an "
             "upper bound: a run that converges earlier stops there):", "", "```text", cost, "```"] if cost else []) + [
         "", "## Convergence: what each split measures", "",
         f"Beside `val` and `val_unseen`, every stage is scored on {TRAIN_PROBE} evenly spaced training images "
         "(PSNR only: the *train probe*; `python studies/emoji32/reproduction.py --probe-train` adds it to stages scored "
         "before it existed). `val` holds the other style's image of emoji seen in training, so a model that learns "
         "the training emoji better also reconstructs `val` better; `val_unseen` holds emoji never seen. The "
         "projections extrapolate the last two gains per doubling geometrically: an estimate, not a measurement.",
         "", "![train probe, val and val_unseen PSNR vs steps](../img/reproduction_convergence.png)", "",
         ] + convergence_table(curves, probes or {}) + ([
         "", "## Trained again on another machine", "",
         "Study runs trained again with the same recipe and seed on another machine (fp32 on both; "
         "`python studies/emoji32/reproduction.py --job RUN --steps S --work <another folder> --results <another folder>`, "
         "each budget resumed from the previous one's checkpoint, so the budgets of a row group are one run; the score "
         "files are copied to docs/results/reproduction/replicates/RUN-TAG/). Beside each budget, the study's run at "
         "the same budget: their difference is the run-to-run noise of one seed (another CPU sums in another order), "
         "the yardstick for the text gain below it. Gains: PSNR change from the budget half as large.",
         ] + replicates_section(list(replicas), curves) if replicas else []) + [
         "", "## Table 1 in miniature (seed 0; both arms of an N at the largest budget both reached)", ""]
    main = [f"{arm}-n{n}-s0" for n in TOKENS for arm in ("textok", "baseline")]
    pending = [r for r in main if not is_converged(curves, r)]
    if pending:
        L += [f"**Not converged yet** ({len(pending)} of the {len(main)} runs below): these are learning-curve points "
              "at the budgets shown, not the study's result.", ""]
    L += table1(curves, replicas)
    L += ["", PAPER, "", "## The text gain over training", "",
          "TexTok minus its no-text twin (seed 0) at every budget both reached (rFID gain: relative, positive = TexTok "
          "better). Whether the gain holds, grows or fades as both arms train is what decides if a gain measured "
          "before convergence means anything.", ""] + gain_over_training(curves)
    L += ["", "## Compression: fewer tokens for the same rFID", ""] + compression(curves)
    L += ["", "## Learning curves (N = 2 and N = 8, seed 0)", "",
          "![PSNR and rFID vs steps](../img/reproduction_curves.png)", ""] + curves_table(curves)
    L += ["", "![rFID vs N](../img/reproduction_rfid_vs_n.png)", "",
          "## Figure 1 in miniature", "",
          "Ten `val_unseen` emoji (never seen in training), evenly spaced through the split. Rows, top to bottom: "
          "the originals, then baseline and TexTok at N = 1, 2, 4 and 8, each pair at the budget of its Table 1 row "
          "(drawn by `python studies/emoji32/reproduction_report.py --grids`, which reads the stage models in the "
          "study's work folder).", "",
          "![original, then baseline / TexTok at N = 1, 2, 4, 8](../img/reproduction_grid.png)", "",
          "What the caption controls, at N = 2: original | baseline | TexTok | TexTok decoding the same tokens "
          "with the next row's caption (the captions: [reproduction_caption_swap.txt](../img/reproduction_caption_swap.txt)).",
          "", "![caption swap at N = 2](../img/reproduction_caption_swap.png)", "",
          "Where the text gain comes from, on every image of both splits (PSNR per emoji category, each pair at "
          "its Table 1 budget; one seed, so read small differences as noise; written by `--grids` to "
          "docs/results/reproduction/by_category.json):", ""] + category_table(by_cat or {}) + ["",
          f"## Seeds ({seeded_tokens(curves)})", "",
          f"**A deviation from the issue, stated:** the seeds are trained to {SIDE_BUDGET} steps, not to the converged "
          "budget, and the main runs' stage at that budget is their seed 0. Training them (and the ablations) to "
          f"{STAGES[-1]} steps instead would cost the core-hours in the last line of the cost estimate above. "
          "The table therefore "
          f"measures the text gain and its seed spread at {SIDE_BUDGET} steps; the Status table shows how far that "
          "budget is from convergence.", "",
          "\"Text helps\" is claimed only where |mean difference| > 2 x the larger of the two arms' standard deviations.",
          ""] + seeds_table(curves)
    L += ["", "## Ablations at N = 2", "",
          f"Each variant is trained to {SIDE_BUDGET} steps (one seed) and compared with both main runs at the same "
          "budget; read a difference against the seed spread above.", ""] + ablation_table(curves)
    by_n = ", ".join(f"{100 * g:.1f}% at N = {n}" for n, g in gain_by_n(curves).items()) or "not measured yet"
    L += ["", "## Generation half", "",
          "A class-conditional DiT (label = emoji subcategory, 99 classes; the detokenizer decodes with a held-out "
          "caption of the class: a `val` or `val_unseen` caption, or for the 6 classes with no held-out image a "
          "training caption) and a DiT-T2I (sampled with the `val` captions, 3 samples each) on the tokens of each "
          "arm's tokenizer, same DiT recipe (`configs/dit_emoji32_class.yaml`, `configs/dit_emoji32_t2i.yaml`: "
          "DiT 6 x 192, batch 128, constant learning rate), budget and seed. Prompts and captions are embedded "
          "from the data set's text cache, as in training. gFID against the training images' statistics (class) "
          "or the `val` images' (T2I); precision and recall with k = 3. CLIP score needs CLIP weights, which do "
          "not exist offline here: not computed. The paper: a 16.3% gFID gain at 256 px.", "",
          "Which N: the issue asks for the N with the largest reconstruction gain, N = 4 if none stands out. "
          f"TexTok's rFID gain on `val` in Table 1 is {by_n}; the generation half runs at the largest and at "
          "N = 4, the shipped pair. Each row compares the two arms' DiTs at one DiT budget; rows at several budgets "
          "of the same task are its learning curve.", "",
          "Commands: `python studies/emoji32/reproduction_generation.py --num-tokens 4 --tokenizer-steps 16000 "
          "--dit-steps 8000` (the DiTs trained and sampled on a GPU machine with `--samples-only`; the same "
          "command without it scored the samples here), its replicate and learning curve on this CPU `... "
          "--num-tokens 4 --tokenizer-steps 16000 --work <another folder> --tag cpu --dit-steps 4000,8000`, and "
          "`... --num-tokens 1 --tokenizer-steps 8000 --tasks t2i --dit-steps 4000,8000` and `... --tasks class "
          "--dit-steps 4000,8000,12000` (trained and sampled on a lent H100 with `--samples-only`, scored here); "
          "the DiT-training noise: `... --num-tokens 1 --tokenizer-steps 8000 --dit-steps 4000 --tasks class "
          "--dit-seed S` for S = 1, 2 (and `--tasks t2i`), trained, sampled and scored on this CPU; the N = 4 "
          "learning curve on an AMD EPYC, one driver per arm (one thread each), from the shipped pair: `... "
          "--num-tokens 4 --tokenizer-steps 16000 --tokenizers shipped --work <another folder> --tag epyc "
          "--tasks t2i,class --dit-steps 4000,8000 --arms A --threads 1` for A = baseline, textok, and its class "
          "DiT re-sampled with the training captions: `... --tag epyc --tasks class --dit-steps 8000 --arms textok "
          "--caption-pool train --threads 2`, and a second DiT seed per arm for the class task: `... --tag epyc "
          "--tasks class --dit-steps 4000,8000,16000 --arms A --dit-seed 1 --threads 1` (both arms at once), "
          "and TexTok's class DiTs at 16k re-sampled with the cycle-chosen caption: `... --tag epyc --tasks class "
          "--dit-steps 16000 --arms textok --caption-choice cycle [--dit-seed 1] --threads 1`. "
          "The GPU machines got the data set without its images (its text cache pruned to the captions in use), "
          "the tokenizers' stage models and their latent caches, encoded here; the DiT weights stayed there.", ""] \
        + generation_table(list(generation)) \
        + [line for i, data in enumerate(reliance)
           for line in caption_reliance_table(data, curves, first=i == 0, replicas=replicas)] \
        + generation_pending(curves, list(generation))
    L += ["", "## LPIPS on a share of the batch", "",
          "The study computes LPIPS on 8 of each batch's 32 images (`loss.perceptual_fraction=0.25`, 1.6x faster "
          "steps). The same TexTok N = 8 run with LPIPS on all 32 images, at equal steps:", ""]
    L += recipe_check(curves, "lpips_fraction_1.0")
    L += ["", "## The GAN", "",
          "The study trains without the GAN. To decide whether it helps rFID at this scale, TexTok N = 2 is trained "
          "again with the discriminator (StyleGAN2-style, narrow: channel base 2048, at most 128 channels), hinge "
          "loss at weight 0.1, LeCAM 1e-4 and lazy R1 (gamma 10 every 16 steps) from step 1,000 on, and compared with "
          "the main run at equal steps:", ""] + recipe_check(curves, "gan", history)
    cool = cooldown_table(HISTORY)
    if cool:
        L += ["", "## A cool-down at the end of the budget", "",
              "The study's runs keep a constant learning rate (so a budget can be doubled by resuming) and score "
              "the EMA weights. Whether a linear cool-down to 0 would have given better models at the same budget "
              "(`python studies/emoji32/reproduction.py --config configs/emoji32_textok.yaml --cooldown RUN STEPS "
              "COOLDOWN`: `schedule.decay=wsd` resumed from the constant-lr checkpoint, which is exactly the "
              "warmup-stable-decay run of STEPS + COOLDOWN steps), first recipe:", ""] + cool
    if history:
        L += ["", "## The first recipe's runs (4x4 patches, stopped)", "",
              "Kept for the record (docs/results/reproduction/patch4/runs/): the runs of `configs/emoji32_textok.yaml` "
              "before the study moved to 8x8 patches.", ""] + status_table(history, pending=False)
    return "\n".join(L) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", default=str(REPO / "docs" / "results" / "reproduction" / "runs"))
    p.add_argument("--history", default=str(HISTORY), help="the first recipe's score files (4x4 patches)")
    p.add_argument("--generation", default=str(GENERATION), help="studies/emoji32/reproduction_generation.py's scores")
    p.add_argument("--out", default=str(REPO / "docs" / "results"))
    p.add_argument("--img", default=str(REPO / "docs" / "img"))
    p.add_argument("--grids", action="store_true")
    p.add_argument("--work", default=str(Path.home() / "textok-study"))
    p.add_argument("--data", default=str(REPO / "data" / "emoji"))
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
    write_text_atomic(out / "reproduction.md", markdown(finals, curves, remaining_cost(Path(args.results)), history,
                                                        generation, probes, by_cat,
                                                        [json.loads(f.read_text()) for f in [RELIANCE] + sorted(
                                                            RELIANCE.parent.glob(RELIANCE_OTHERS)) if f.is_file()],
                                                        replicas))
    written += [out / "reproduction.json", out / "reproduction.md"] + plots(finals, curves, img, probes)
    for path in written:
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
