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
  (every row's ``measures``: ``"new"`` for `val_unseen`, ``"recall"`` for `val`, ``reproduction.SPLIT_MEASURES``);
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
import re
import statistics
import sys
from collections import defaultdict
from pathlib import Path
from typing import Sequence

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from reproduction import (CONFIG, REPORT_SPLITS, SIDE_BUDGET, SPLIT_ABOUT, SPLIT_LABELS,  # noqa: E402
                          SPLIT_MEASURES, SPLITS, STAGES, TRAIN_PROBE, converged, done_stages, remaining_cost,
                          stage_dir, study_runs)

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
                for split in REPORT_SPLITS:
                    psnr = {st: by[(st, split)]["psnr"] for st in steps if (st, split) in by}
                    have = sorted(psnr)
                    if len(have) < 2 or have[-1] != 2 * have[-2]:
                        parts.append(f"{label(split)}: no doubled budget yet")
                        continue
                    yes = converged(psnr, converged_db)
                    parts.append(f"{label(split)} {psnr[have[-1]] - psnr[have[-2]]:+.2f} dB from {have[-2]} to {have[-1]} "
                                 f"steps: {'converged' if yes else 'not converged'} by the {converged_db} dB rule")
                verdicts.append(f"- {run}: " + "; ".join(parts) + ".")
            out += [""] + verdicts
            runs = {r["arm"]: r["run"] for r in rows if r["seed"] == 0 and not r.get("ablation")}
            if {"textok", "baseline"} <= set(runs):
                common = sorted({r["steps"] for r in rows if r["run"] == runs["textok"]}
                                & {r["steps"] for r in rows if r["run"] == runs["baseline"]})
                for st in common:
                    cells = []
                    for split in REPORT_SPLITS:
                        b = one(rows, run=runs["baseline"], steps=st, split=split)
                        t = one(rows, run=runs["textok"], steps=st, split=split)
                        if b and t:
                            cells.append(f"{label(split)} rFID {fmt(b['rfid'], 1)} -> {fmt(t['rfid'], 1)} "
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
    """Both arms per split (new-emoji first) and N: the mean ± std over the seeds where N has >= 3 per arm (else
    seed 0 alone, said so), each at the largest budget all of N's runs reached; TexTok's gain with its Welch
    p-value and the 2-std rule; the average rFID gain over the seeded N; and where seed 0's pair was trained
    again on another machine (``replicas``), its gain beside seed 0's (the noise of one run)."""
    out = ["| split | N | compression | steps | seeds per arm | rFID baseline | rFID TexTok | rFID gain | significance "
           "| PSNR baseline | PSNR TexTok | PSNR gain (dB) | significance | LPIPS baseline | LPIPS TexTok |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---|---:|---:|"]
    for split in REPORT_SPLITS:
        for n in TOKENS:
            c, p, lp = (compare(curves, n, split, m) for m in ("rfid", "psnr", "lpips"))
            if c is None:
                continue
            k = min(c["seeds"].values())
            out.append(f"| {label(split)} | {n} | {3072 // (8 * n)}x | {c['steps']} | {k}{'' if k >= 3 else ' (seed 0)'} "
                       f"| {mean_sd(c['baseline'], 1)} | {mean_sd(c['textok'], 1)} | {100 * c['gain']:+.1f}% "
                       f"| {significance(c)} | {mean_sd(p['baseline'], 2)} | {mean_sd(p['textok'], 2)} "
                       f"| {p['difference']:+.2f} | {significance(p)} | {mean_sd(lp['baseline'], 4)} "
                       f"| {mean_sd(lp['textok'], 4)} |")
    out.append("")
    for split in REPORT_SPLITS:
        cs = [c for c in (compare(curves, n, split) for n in TOKENS) if seeded(c)]
        if cs:
            out.append(f"- Average relative rFID gain on {label(split)} over the N with at least 3 seeds per arm "
                       f"(N = {', '.join(str(c['n']) for c in cs)}, at {'/'.join(sorted({str(c['steps']) for c in cs}))} "
                       f"steps): **{100 * statistics.mean(c['gain'] for c in cs):+.1f}%** (the mean of the per-N gains "
                       "of the seed means).")
    rows = main_rows(curves)
    for tag in sorted({r["replicate"] for r in replicas}):
        for split in REPORT_SPLITS:
            for n in TOKENS:
                b, t = one(rows, arm="baseline", num_tokens=n, split=split), one(rows, arm="textok", num_tokens=n, split=split)
                if not (b and t and b["steps"] == t["steps"]):
                    continue
                again = {arm: one(replicas, replicate=tag, run=f"{arm}-n{n}-s0", steps=b["steps"], split=split)
                         for arm in ("baseline", "textok")}
                rb, rt = again["baseline"], again["textok"]
                if rb and rt:
                    out.append(f"- The seed-0 pair of N = {n} trained again on {rb.get('cpu') or '?'} (`{tag}`, same "
                               f"recipe, seed and budget, straight), {label(split)}: rFID {fmt(rb['rfid'], 1)} -> "
                               f"{fmt(rt['rfid'], 1)}, a {100 * gain(rb['rfid'], rt['rfid']):.1f}% gain (seed 0 on "
                               f"{b.get('cpu') or '?'}: {fmt(b['rfid'], 1)} -> {fmt(t['rfid'], 1)}, "
                               f"{100 * gain(b['rfid'], t['rfid']):.1f}%), PSNR {rt['psnr'] - rb['psnr']:+.2f} dB "
                               f"({t['psnr'] - b['psnr']:+.2f}): the spread of one run.")
    return out


def gain_by_n(curves, split: str = "val") -> dict[int, float]:
    """N -> TexTok's relative rFID gain on ``split`` in Table 1 (both arms at one budget)."""
    rows, out = main_rows(curves), {}
    for n in TOKENS:
        b, t = one(rows, arm="baseline", num_tokens=n, split=split), one(rows, arm="textok", num_tokens=n, split=split)
        if b and t and b["steps"] == t["steps"]:
            out[n] = gain(b["rfid"], t["rfid"])
    return out


def compression(curves, steps: int = SIDE_BUDGET) -> list[str]:
    """The smallest N at which TexTok's rFID is at most the baseline's at N = 8, per split (new-emoji first), all
    at ``steps`` (the budget every seed reached): the mean over the seeds each N has there."""
    out = []
    for split in REPORT_SPLITS:
        vals = {n: seed_values(curves, n, split, "rfid", steps)[1] for n in TOKENS}
        ref = [v for _, v in vals[8]["baseline"]]
        tex = {n: [v for _, v in vals[n]["textok"]] for n in TOKENS}
        if not ref or not all(tex.values()):
            out.append(f"- {label(split)}: pending (needs the baseline at N = 8 and TexTok at every N at {steps} steps).")
            continue
        rb = statistics.mean(ref)
        seeds = lambda v: f"{len(v)} seed{'s' if len(v) > 1 else ''}"  # noqa: E731
        at = lambda n: f"{statistics.mean(tex[n]):.1f} ({seeds(tex[n])})"  # noqa: E731
        match = [n for n in TOKENS if statistics.mean(tex[n]) <= rb]
        head = f"- {label(split)}, all at {steps} steps, the baseline's N = 8 rFID {rb:.1f} ({seeds(ref)})"
        if match and min(match) < 8:
            n = min(match)
            out.append(f"{head}: TexTok matches it with N = {n} ({8 // n}x fewer tokens; its rFID {at(n)}).")
        elif match:  # only N = 8 itself: no saving in tokens, say how far the next smaller N falls short
            out.append(f"{head}: no smaller TexTok N reaches it: TexTok N = 4 has {at(4)}; at N = 8 TexTok has {at(8)}.")
        else:
            out.append(f"{head}: no TexTok N reaches it.")
    return out


def is_converged(curves, run: str, converged_db: float = 0.3, split: str = "val") -> bool:
    """Doubling the run's last budget moved its PSNR on ``split`` by less than ``converged_db``."""
    return converged({r["steps"]: r["psnr"] for r in curves if r["run"] == run and r["split"] == split}, converged_db)


def status_table(curves, converged_db: float = 0.3, pending: bool = True) -> list[str]:
    """Each run's budgets so far and whether doubling the last one moved PSNR < converged_db (the study's rule), on
    the new-emoji split first, then on the recall split (the rule the study was planned with)."""
    out = ["| run | budgets done (steps) | new emoji: PSNR change at the last doubling | converged on new emoji? "
           "| recall: PSNR at the last | change | converged on recall? |",
           "|---|---|---:|---|---:|---:|---|"]
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
            verdict_u = (f"side run, stopped at {run.max_stage}" if rows[-1]["steps"] >= run.max_stage
                         else f"side run, to {run.max_stage} steps")
            verdict = "–"
        out.append(f"| {run.name} | {', '.join(str(r['steps']) for r in rows)} | {change_u} | {verdict_u} "
                   f"| {rows[-1]['psnr']:.2f} | {change} | {verdict} |")
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
    # train probe -> recall -> new emoji: the order of how much of the training set each image re-shows
    out = ["| run | steps | train probe PSNR | gain | recall (`val`) PSNR | gain | new emoji (`val_unseen`) PSNR | gain |",
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
        for split in REPORT_SPLITS:
            k = doublings_left(gains[split])
            if k == 0:
                parts.append(f"{label(split)}: the last doubling gained {gains[split][-1]:+.2f} dB, below 0.3")
            elif k is None and len(gains[split]) < 2:
                parts.append(f"{label(split)}: one doubling so far ({gains[split][-1]:+.2f} dB; no projection)")
            elif k is None:
                parts.append(f"{label(split)}: {gains[split][-2]:+.2f} then {gains[split][-1]:+.2f} dB per doubling, not "
                             "shrinking (no projection)")
            else:
                more = f"{k} more doubling{'s' if k > 1 else ''}"
                parts.append(f"{label(split)}: {gains[split][-2]:+.2f} then {gains[split][-1]:+.2f} dB per doubling; at that "
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
    out = ["| N | steps | new emoji PSNR gain (dB) | new emoji rFID gain | recall PSNR gain (dB) | recall rFID gain |",
           "|---:|---:|---:|---:|---:|---:|"]
    by = {(r["run"], r["steps"], r["split"]): r for r in curves}
    for n in TOKENS:
        steps = sorted({s for (run, s, _) in by if run == f"textok-n{n}-s0"} &
                       {s for (run, s, _) in by if run == f"baseline-n{n}-s0"})
        for st in steps:
            cells = []
            for split in REPORT_SPLITS:
                b, t = by[(f"baseline-n{n}-s0", st, split)], by[(f"textok-n{n}-s0", st, split)]
                cells += [f"{t['psnr'] - b['psnr']:+.2f}", f"{100 * gain(b['rfid'], t['rfid']):.1f}%"]
            out.append(f"| {n} | {st} | " + " | ".join(cells) + " |")
    return out if len(out) > 2 else ["Pending: needs both arms of an N at one budget."]


def curves_table(curves) -> list[str]:
    out = ["| N | arm | steps | new emoji PSNR | new emoji rFID | recall PSNR | recall rFID | train s (1 thread) |",
           "|---:|---|---:|---:|---:|---:|---:|---:|"]
    for n in (2, 8):
        for arm in ("baseline", "textok"):
            rows = [r for r in curves if r["run"] == f"{arm}-n{n}-s0"]
            for steps in sorted({r["steps"] for r in rows}):
                v, u = one(rows, steps=steps, split="val"), one(rows, steps=steps, split="val_unseen")
                out.append(f"| {n} | {arm} | {steps} | {fmt(u and u['psnr'])} | {fmt(u and u['rfid'], 1)} "
                           f"| {fmt(v and v['psnr'])} | {fmt(v and v['rfid'], 1)} | {fmt(v and v['train_seconds'], 0)} |")
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
    out = ["| split | N | steps | metric | baseline mean ± std | TexTok mean ± std | seeds | difference | > 2 std? "
           "| Welch p |", "|---|---:|---:|---|---|---|---:|---:|---|---:|"]
    for split in REPORT_SPLITS:
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
                p = welch_p(vals["baseline"], vals["textok"])
                out.append(f"| {label(split)} | {n} | {steps} | {metric} | {mb:.{d}f} ± {sb:.{d}f} | {mt:.{d}f} ± {st:.{d}f} "
                           f"| {len(vals['baseline'])}/{len(vals['textok'])} | {diff:+.{d}f} | {verdict} "
                           f"| {'–' if p is None else f'{p:.2g}'} |")
    if len(out) == 2:
        out.append("| | | | pending: needs at least 2 seeds per arm at one common budget | | | | | | |")
    return out


ARMS = ("baseline", "textok")
LOWER_IS_BETTER = {"rfid": True, "lpips": True, "psnr": False, "ssim": False}
COMMAND = "python studies/emoji32/reproduction_report.py"  # printed beside every generated number


def label(split: str) -> str:
    """The split named for what it measures (``reproduction.SPLIT_LABELS``)."""
    return SPLIT_LABELS.get(split, f"`{split}`")


def report_order(splits) -> list[str]:
    """``splits`` (distinct) in the report's order: ``REPORT_SPLITS`` first (new emoji first), then any other
    in the order given."""
    splits = list(dict.fromkeys(splits))
    return [s for s in REPORT_SPLITS if s in splits] + [s for s in splits if s not in REPORT_SPLITS]


def reference_label(reference: str) -> str:
    """A generation record's reference set, ``"emoji <split> 32 px"``, with the split named as ``label`` names it."""
    return re.sub(r"^emoji (\S+) ", lambda m: f"emoji {label(m.group(1))} ", reference)


def welch_p(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Two-sided Welch t-test p-value of two samples (scipy), None with fewer than 2 values in either or no
    variance in both (the test is undefined)."""
    if min(len(a), len(b)) < 2 or (statistics.stdev(a) == 0 and statistics.stdev(b) == 0):
        return None
    from scipy.stats import ttest_ind

    return float(ttest_ind(list(a), list(b), equal_var=False).pvalue)


def seed_values(curves, n: int, split: str, metric: str, steps: int | None = None) -> tuple[int | None, dict]:
    """The main runs of N (every seed, no ablation) at the largest budget all of them reached (or ``steps``):
    (steps, {arm: [(seed, value), ...]})."""
    runs = sorted({r["run"] for r in curves if r.get("ablation") is None and r.get("num_tokens") == n})
    steps = steps or common_budget(curves, runs)
    vals = {arm: sorted((r["seed"], r[metric]) for r in curves if r["run"] in runs and r["arm"] == arm
                        and r["split"] == split and r["steps"] == steps) for arm in ARMS}
    return steps, vals


def compare(curves, n: int, split: str, metric: str = "rfid") -> dict | None:
    """Both arms of N on ``split``: mean and std over the seeds, TexTok's gain (positive = TexTok better; for
    rFID relative, else the difference), the Welch p-value and whether |difference| > 2 x the larger std."""
    steps, vals = seed_values(curves, n, split, metric)
    b, t = ([v for _, v in vals[arm]] for arm in ARMS)
    if not b or not t:
        return None
    mb, mt = statistics.mean(b), statistics.mean(t)
    sb = statistics.stdev(b) if len(b) > 1 else None
    st = statistics.stdev(t) if len(t) > 1 else None
    diff = (mb - mt) if LOWER_IS_BETTER[metric] else (mt - mb)
    return {"n": n, "split": split, "metric": metric, "steps": steps, "seeds": {"baseline": len(b), "textok": len(t)},
            "baseline": [mb, sb], "textok": [mt, st], "difference": diff,
            "gain": (mb - mt) / mb if metric == "rfid" else None, "p": welch_p(b, t),
            "beyond_2std": None if sb is None or st is None else abs(diff) > 2 * max(sb, st)}


def mean_sd(pair, d: int) -> str:
    m, s = pair
    return f"{m:.{d}f}" + ("" if s is None else f" ± {s:.{d}f}")


def significance(c: dict | None) -> str:
    """'p = 0.13, within 2 std' / 'one seed: no test'."""
    if c is None:
        return "–"
    if c["p"] is None:
        return f"{min(c['seeds'].values())} seed{'s' if min(c['seeds'].values()) > 1 else ''}: no test"
    return f"p = {c['p']:.2g}, {'beyond' if c['beyond_2std'] else 'within'} 2 std"


def seeded(c: dict | None) -> bool:
    """At least 3 seeds per arm: Table 1 reads the mean over seeds (the issue's rule)."""
    return c is not None and min(c["seeds"].values()) >= 3


def summary_data(curves, twins: dict | None = None) -> dict:
    """docs/results/reproduction/summary.json: per split (new-emoji first) and N, mean ± std per arm over the
    seeds at the budget all of N's runs reached, the number of seeds, TexTok's gain and its Welch p-value."""
    out = {"generated_by": COMMAND, "note": "mean and sample std over seeds; gain: rFID relative (%), PSNR in dB; "
           "p: two-sided Welch t-test; beyond_2std: |difference| > 2 x the larger std of the two arms",
           "splits": {}}
    for split in REPORT_SPLITS:
        entry = {"measures": SPLIT_MEASURES[split], "label": SPLIT_LABELS[split], "about": SPLIT_ABOUT[split],
                 "by_num_tokens": {}}
        if twins and split in twins:
            entry["twins_in_train"] = twins[split]
        for n in TOKENS:
            cs = {m: compare(curves, n, split, m) for m in ("rfid", "psnr", "lpips")}
            if cs["rfid"] is None:
                continue
            entry["by_num_tokens"][str(n)] = {
                "steps": cs["rfid"]["steps"], "seeds": cs["rfid"]["seeds"],
                **{m: {"baseline_mean": c["baseline"][0], "baseline_std": c["baseline"][1],
                       "textok_mean": c["textok"][0], "textok_std": c["textok"][1],
                       ("gain_percent" if m == "rfid" else "difference"): (100 * c["gain"] if m == "rfid"
                                                                            else c["difference"]),
                       "p": c["p"], "beyond_2std": c["beyond_2std"]} for m, c in cs.items() if c}}
        gains = [100 * compare(curves, n, split)["gain"] for n in TOKENS if seeded(compare(curves, n, split))]
        entry["average_rfid_gain_percent_over_seeded_n"] = statistics.mean(gains) if gains else None
        out["splits"][split] = entry
    return out


def results_block(curves) -> list[str]:
    """The README's results table (between its markers): Table 1's seed means, new-emoji first."""
    out = [f"Printed by `{COMMAND}` from the score files (full report: "
           "[docs/results/reproduction.md](docs/results/reproduction.md)); mean ± std over seeds, Welch p.", "",
           "| split | N | seeds per arm | steps | rFID baseline | rFID TexTok | rFID gain | PSNR gain (dB) |",
           "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for split in REPORT_SPLITS:
        for n in TOKENS:
            c, p = compare(curves, n, split), compare(curves, n, split, "psnr")
            if c is None:
                continue
            out.append(f"| {label(split)} | {n} | {min(c['seeds'].values())} | {c['steps']} | {mean_sd(c['baseline'], 1)} "
                       f"| {mean_sd(c['textok'], 1)} | {100 * c['gain']:+.1f}% ({significance(c)}) "
                       f"| {p['difference']:+.2f} ({significance(p)}) |")
    return out


RESULTS_BEGIN = "<!-- results table: studies/emoji32/reproduction_report.py -->"
RESULTS_END = "<!-- end results table -->"


def fill_readme(readme: Path, block: list[str]) -> str:
    """Put ``block`` between the README's results markers; -> what was done (the markers may not exist yet)."""
    if not readme.is_file():
        return f"skipped {readme}: no such file"
    text = readme.read_text()
    if RESULTS_BEGIN not in text or RESULTS_END not in text or text.index(RESULTS_END) < text.index(RESULTS_BEGIN):
        return f"skipped {readme}: it has no '{RESULTS_BEGIN}' ... '{RESULTS_END}' markers to fill"
    head, rest = text.split(RESULTS_BEGIN, 1)
    _, tail = rest.split(RESULTS_END, 1)
    new = head + RESULTS_BEGIN + "\n" + "\n".join(block) + "\n" + RESULTS_END + tail
    if new == text:
        return f"{readme}: results table unchanged"
    from textok.io import write_text_atomic

    write_text_atomic(readme, new)
    return f"wrote {readme} (results table)"


def seed0_ranks(curves, split: str = "val", metric: str = "rfid") -> list[tuple[int, str, int, int]]:
    """(N, arm, seed 0's rank among the seeds (1 = best), number of seeds) where an arm has >= 3 seeds."""
    out = []
    for n in TOKENS:
        _, vals = seed_values(curves, n, split, metric)
        for arm in ARMS:
            if len(vals[arm]) >= 3 and vals[arm][0][0] == 0:
                order = sorted(vals[arm], key=lambda sv: sv[1] if LOWER_IS_BETTER[metric] else -sv[1])
                out.append((n, arm, [s for s, _ in order].index(0) + 1, len(order)))
    return out


def seed0_table(curves) -> list[str]:
    """Seed 0 (trained in stages, 2k -> 4k -> 8k, scored in between) beside seeds 1 and 2 (straight to 8k), per split."""
    out = ["| split | N | arm | steps | rFID seed 0 | rFID seeds 1, 2 | seed 0's rank (1 = best) "
           "| s / step, seed 0 | s / step, seeds 1, 2 |", "|---|---:|---|---:|---:|---|---:|---:|---|"]
    for split in REPORT_SPLITS:
        ranks = {(n, arm): (k, m) for n, arm, k, m in seed0_ranks(curves, split)}
        for n in TOKENS:
            steps, vals = seed_values(curves, n, split, "rfid")
            for arm in ARMS:
                if (n, arm) not in ranks:
                    continue
                k, m = ranks[(n, arm)]
                others = ", ".join(f"{v:.1f}" for s, v in vals[arm] if s != 0)
                rows = sorted((r for r in curves if r.get("ablation") is None and r.get("num_tokens") == n
                               and r["arm"] == arm and r["split"] == split and r["steps"] == steps), key=lambda r: r["seed"])
                # before the trainer counted every process's seconds (train_seconds_complete missing or false), a
                # resumed stage recorded its last process only: a lower bound
                rate = {r["seed"]: ("–" if not r.get("train_seconds") else
                                    ("" if r.get("train_seconds_complete") else "≥") + f"{r['train_seconds'] / steps:.2f}")
                        for r in rows}
                out.append(f"| {label(split)} | {n} | {arm} | {steps} | {vals[arm][0][1]:.1f} | {others} | {k} of {m} "
                           f"| {rate.get(0, '–')} | {', '.join(v for s, v in rate.items() if s != 0)} |")
    if len(out) == 2:
        return []
    return out + ["", "Seconds per step: the training seconds in each score file (all stages of a run together) over its "
                  "steps; ≥ where the file predates the trainer's count of every process's seconds, so a resumed stage "
                  "recorded only its last process (a lower bound). Runs went two at a time on the 2-core machine."]


def summary_lines(curves, twins: dict | None = None, ablations: list[str] = ()) -> list[str]:
    """The report's opening findings, computed from the numbers: each names its split, seeds and significance."""
    out = []
    if twins and "val" in twins:
        t = twins["val"]
        out.append(f"- **What the splits measure** (`textok data check data/emoji`): {label('val_unseen')} holds emoji "
                   f"never seen in training (0 of {twins['val_unseen']['num_images']} share a caption with `train`), "
                   f"the headline; {label('val')}: {t['caption_twins']} of {t['num_images']} images share their caption "
                   f"with a training image ({t['base_twins']} their base emoji), so it measures recall.")
    for split in REPORT_SPLITS:
        for metric, unit in (("rfid", "rFID gain"), ("psnr", "PSNR gain"), ("lpips", "LPIPS reduction")):
            cs = [compare(curves, n, split, metric) for n in TOKENS]
            cs = [c for c in cs if seeded(c)]
            if not cs:
                continue
            seeds = "/".join(sorted({str(min(c["seeds"].values())) for c in cs}))
            steps = "/".join(sorted({str(c["steps"]) for c in cs}))
            sig = [c for c in cs if c["p"] is not None and c["p"] < 0.05]
            cells = ", ".join(f"N = {c['n']}: " + (f"{100 * c['gain']:+.1f}%" if metric == "rfid" else
                                                   f"{c['difference']:+.2f} dB" if metric == "psnr" else
                                                   f"{c['difference']:+.4f}")
                              + (" (no variance: no test)" if c["p"] is None else f" (p = {c['p']:.2g})") for c in cs)
            verdict = ("no gain is significant (p < 0.05) or beyond 2 std" if not sig and not any(c["beyond_2std"] for c in cs)
                       else f"significant at p < 0.05 for N = {', '.join(str(c['n']) for c in sig) or 'none'}; beyond "
                            f"2 std for N = {', '.join(str(c['n']) for c in cs if c['beyond_2std']) or 'none'}")
            out.append(f"- {label(split)}, {seeds} seeds per arm at {steps} steps, TexTok's {unit} over the baseline: "
                       f"{cells}; {verdict}.")
    ranks = seed0_ranks(curves, "val")
    if ranks:
        worst = [n for n, arm, k, m in ranks if arm == "baseline" and k == m]
        best = [n for n, arm, k, m in ranks if arm == "textok" and k == 1]
        out.append(f"- Seed 0 (trained in stages; seeds 1-2 straight) is the worst of {ranks[0][3]} baseline seeds on "
                   f"{label('val')} rFID at N = {', '.join(map(str, worst)) or 'none'} and the best TexTok seed at N = "
                   f"{', '.join(map(str, best)) or 'none'} ({len(worst) + len(best)} of {len(ranks)}): gains taken from "
                   "seed 0 alone overstate the recall gain; Table 1 uses the seed means.")
    return out + [line.replace("- ", "- Compression, ", 1) for line in compression(curves)] + list(ablations)


def ablation_rows(curves, steps: int = SIDE_BUDGET) -> tuple[list[tuple], dict, list[str], str]:
    """The N = 2 ablations at ``steps`` against TexTok's seeds there: ([(label, run, {split: row}, verdict,
    flagged)], the seeds' (mean, std) per (split, metric), the seeds' names, their machine). A variant trained on
    another machine kind than the seeds is not compared (same recipe and seed moved a baseline's rFID by several
    points between the two machines): its verdict says so."""
    seeds = [r.name for r in study_runs() if r.arm == "textok" and r.num_tokens == 2 and r.ablation is None
             and one(curves, run=r.name, split="val", steps=steps)]  # the seeds scored at ``steps``
    machine = " / ".join(sorted({one(curves, run=run, split="val", steps=steps).get("cpu") or "?" for run in seeds}))
    ref = {}  # (split, metric) -> (mean, std) of TexTok's seeds at ``steps``
    for split in REPORT_SPLITS:
        for metric in ("rfid", "psnr"):
            vals = [v[metric] for v in (one(curves, run=run, split=split, steps=steps) for run in seeds) if v]
            if len(vals) >= 2:
                ref[(split, metric)] = (statistics.mean(vals), statistics.stdev(vals))
    base = {"baseline (no text)": "baseline-n2-s0", "TexTok: both, in-context, full caption, dropout 0": "textok-n2-s0"}
    names = list(base.items()) + [(r.ablation, r.name) for r in study_runs()
                                  if r.ablation and r.num_tokens == 2 and r.ablation not in RECIPE_CHECKS]
    rows = []
    for name, run in names:
        by = {split: one(curves, run=run, split=split, steps=steps) for split in REPORT_SPLITS}
        v = by["val"]
        if v is None:
            rows.append((name, run, by, "pending", []))
            continue
        cpu = v.get("cpu") or "?"
        if machine and cpu != machine:
            rows.append((name, run, by, f"trained on {cpu}, TexTok's seeds on {machine}: no conclusion", []))
            continue
        flagged = [f"{label(split)} {metric.replace('rfid', 'rFID').replace('psnr', 'PSNR')}"
                   for split in REPORT_SPLITS for metric in ("rfid", "psnr")
                   if by[split] and (split, metric) in ref
                   and abs(by[split][metric] - ref[(split, metric)][0]) > 2 * ref[(split, metric)][1]]
        verdict = ("–" if not ref else "beyond 2 std of TexTok's seeds on " + ", ".join(flagged) if flagged
                   else "within 2 std of TexTok's seeds on both splits")
        rows.append((name, run, by, verdict, flagged))
    return rows, ref, seeds, machine


def ablation_table(curves, steps: int = SIDE_BUDGET) -> list[str]:
    """Every ablation at N = 2 beside both main runs, all at ``steps`` (the side runs' budget), new-emoji first, with
    the machine each trained on and each variant's rFID and PSNR minus the mean of TexTok's seeds, marked * where
    beyond two of their standard deviations; a variant from another machine kind gets no difference and no verdict."""
    rows, ref, seeds, machine = ablation_rows(curves, steps)
    out = ["| variant (N = 2, seed 0) | steps | machine | new emoji rFID | Δ | new emoji PSNR | Δ | recall rFID | Δ "
           "| recall PSNR | Δ | verdict |", "|---|---:|---|" + "---:|" * 8 + "---|"]
    for name, run, by, verdict, _ in rows:
        if by["val"] is None:
            out.append(f"| {name} | pending |" + " |" * 10)
            continue
        same = not verdict.startswith("trained on")
        cells = []
        for split in REPORT_SPLITS:
            for metric, d in (("rfid", 1), ("psnr", 2)):
                row = by[split]
                cells.append(fmt(row and row[metric], d))
                if row is None or (split, metric) not in ref or not same:
                    cells.append("–")
                    continue
                mean, sd = ref[(split, metric)]
                cells.append(f"{row[metric] - mean:+.{d}f}{'*' if abs(row[metric] - mean) > 2 * sd else ''}")
        out.append(f"| {name} | {by['val']['steps']} | {by['val'].get('cpu') or '?'} | {' | '.join(cells)} | {verdict} |")
    if ref:
        out += ["", f"Δ: the score minus the mean of TexTok's {len(seeds)} seeds at this budget, trained on {machine} (" +
                ", ".join(f"{label(split)} {metric.replace('rfid', 'rFID').replace('psnr', 'PSNR')} {m:.2f} ± {sd:.2f}"
                          for (split, metric), (m, sd) in ref.items()) + "); * where it exceeds two of their standard "
                "deviations, the rule the Seeds table applies. One seed per variant."]
    return out


def ablation_summary(curves, steps: int = SIDE_BUDGET) -> list[str]:
    """One summary line: which ablations are compared on the seeds' machine and what holds, which are not."""
    rows, ref, seeds, machine = ablation_rows(curves, steps)
    rows = [r for r in rows if r[1] not in ("baseline-n2-s0", "textok-n2-s0") and r[3] != "pending"]
    if not rows or not ref:
        return []
    other = [r[0] for r in rows if r[3].startswith("trained on")]
    for ablation, (ref_run, var_run, _, _) in RECIPE_CHECKS.items():  # the GAN and LPIPS-share checks
        a, b = one(curves, run=ref_run, split="val"), one(curves, run=var_run, split="val")
        if a and b and a.get("cpu") != b.get("cpu"):
            other.append(f"{ablation} (against {ref_run})")
    same = [r for r in rows if not r[3].startswith("trained on")]
    beyond = [f"{r[0]} ({', '.join(r[4])})" for r in same if r[4]]
    text = (f"- N = 2 ablations (one seed each, {steps} steps) against TexTok's {len(seeds)} seeds on {machine}: "
            f"{len(same)} on that machine, " + (f"beyond 2 std: {'; '.join(beyond)}" if beyond else
                                                "none beyond 2 std on either split"))
    if other:
        text += f"; {', '.join(other)} trained on another machine: no conclusion"
    return [text + "."]


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
    out = ["| recipe | steps | recall PSNR | recall LPIPS | recall rFID | new emoji rFID "
           "| images/s (1 thread, shared machine) | CPU |", "|---|---:|---:|---:|---:|---:|---:|---|"]
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
    ua, ub = by.get((ref, "val_unseen", common[-1])), by.get((var, "val_unseen", common[-1]))
    new = f"{ub['rfid'] - ua['rfid']:+.1f} new-emoji rFID, " if ua and ub else ""
    out += ["", f"At {common[-1]} steps the variant is {new}{b['psnr'] - a['psnr']:+.2f} dB recall PSNR, "
            f"{b['lpips'] - a['lpips']:+.4f} recall LPIPS and {b['rfid'] - a['rfid']:+.1f} recall rFID from the main run "
            "(one seed each: compare with the seed spread in the Seeds table)."]
    if c:
        out[-1] += (f" The main run at {twice} steps is {c['psnr'] - b['psnr']:+.2f} dB recall PSNR and "
                    f"{c['rfid'] - b['rfid']:+.1f} recall rFID from the variant.")
    if a.get("cpu") != b.get("cpu"):  # the study outlives a session, and a session's machine may differ
        out[-1] += (f" The two trained on different machines ({a.get('cpu') or 'unrecorded'}; "
                    f"{b.get('cpu') or 'unrecorded'}): their images/s are not comparable, and the same recipe and seed "
                    "differ between machines by as much as between seeds (see \"Trained again on another machine\"), "
                    "so **no conclusion** is drawn from this comparison.")
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
    for ax, split in zip(axes, REPORT_SPLITS):
        for arm, style in (("baseline", "o--"), ("textok", "s-")):
            pts = sorted((r["num_tokens"], r["rfid"]) for r in pick(rows, arm=arm, split=split))
            if pts:
                ax.plot(*zip(*pts), style, label="TexTok" if arm == "textok" else "baseline (no text)")
        ax.set_xscale("log", base=2)
        ax.set_xticks(TOKENS, [str(n) for n in TOKENS])
        ax.set_xlabel("tokens N (x 8 channels)")
        ax.set_title(f"emoji 32 px, {label(split).replace('`', '')}")
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
    for ax, ylab in zip(axes, ("recall (val) PSNR (dB)", "recall (val) rFID")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("optimiser steps (x 32 images)")
        ax.set_ylabel(ylab)
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
            for name, style, ys in (
                    ("train probe", "^:", [probes.get((run, s), {}).get("psnr") for s in steps]),
                    ("val", "o-", [one(curves, run=run, steps=s, split="val")["psnr"] for s in steps]),
                    ("val_unseen", "s--", [one(curves, run=run, steps=s, split="val_unseen")["psnr"] for s in steps])):
                pts = [(s, y) for s, y in zip(steps, ys) if y is not None]
                if pts:
                    ax.plot(*zip(*pts), style, label=name)
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

    from textok import CaptionedTokenizer
    from textok.data import load_text_cache, open_dataset
    from textok.data.transforms import make_grid, to_pil

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
        return CaptionedTokenizer.from_pretrained(path, text=cache) if path.is_dir() else None

    @torch.no_grad()
    def rec(model, caps, decode_caps=None):
        return model.reconstruct(images, caps, decode_caps)

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

    from textok import CaptionedTokenizer
    from textok.data import load_text_cache, open_dataset
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
        base, text = (CaptionedTokenizer.from_pretrained(p, text=cache) for p in paths)
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
                    tokens = text.encode(x, c)
                    for name, rec in (("baseline", base.reconstruct(x)),
                                      ("textok", text.decode(tokens, c)), ("swapped", text.decode(tokens, o))):
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
    for split in REPORT_SPLITS:
        head = " | ".join(f"N = {p['num_tokens']} ({p['steps']})" for p in pairs)
        out += ["", f"{label(split)}: TexTok minus baseline PSNR (dB), per category (images); last row: TexTok decoding "
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
        ref = f"{reference_label(any_['reference'])} ({any_['report'].get('ref_num', '?')} images)"
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
        for split in report_order(r["split"] for r in records):
            base = [r for r in curves if r["run"] == f"baseline-n{n}-s0" and r["split"] == split]
            if base:
                b = max(base, key=lambda r: r["steps"])
                cell[(split, "baseline", "own")] = b
                theirs += [f"{label(split)} rFID {fmt(r['rfid'], 1)}, PSNR {fmt(r['psnr'])} dB" for r in curves
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
    for split in report_order(r["split"] for r in records):
        row = [cell.get((split, arm, dec), {}) for arm, dec in cols]
        for metric, name, digits in (("rfid", "rFID", 1), ("psnr", "PSNR (dB)", 2), ("lpips", "LPIPS", 3)):
            out.append(f"| {label(split)} | {name} | "
                       + " | ".join(fmt(c.get(metric), digits) for c in row) + " |")
        out.append(f"| {label(split)} | images swapped | – | 0 of {row[1].get('num_images', '?')} | "
                   + " | ".join(f"{c.get('swapped', '?')} of {c.get('num_images', '?')}" for c in row[2:]) + " |")
    if first and (REPO / "docs" / "img" / "reproduction_caption_reliance.png").is_file():
        out += ["", f"Eight {label('val')} emoji whose class holds another caption: original | baseline | TexTok | "
                "TexTok decoding the same tokens with a random caption of the class | with the caption of the class "
                "chosen by cycle error | with a caption of another class (`--grid`; the captions: "
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


PAGE = "../../studies/emoji32/README.md"  # the study's hand-written page, from docs/results/


def markdown(finals, curves, cost: str | None = None, history=(), generation=(), probes=None,
             by_cat: dict | None = None, reliance: Sequence[dict] = (), replicas: Sequence[dict] = (),
             twins: dict | None = None) -> str:
    """The report: the generated summary, then every table and plot. The narrative (what the study is, how to run
    and read it, the seed-0 investigation) is the study's hand-written page, ``studies/emoji32/README.md``."""
    cpu = sorted({r["cpu"] for r in finals + list(history) if r.get("cpu")})
    summary = summary_lines(curves, twins, ablation_summary(curves))[:15]
    L = ["# Reproduction: the paper's Table 1 in miniature", "",
         f"Generated by `{COMMAND}` from the score files of `python studies/emoji32/reproduction.py` "
         "(docs/results/reproduction/runs/; first recipe: .../patch4/runs/; pilots: .../pilots/); do not edit by "
         f"hand. What the study is, how to run it and how to read it: [studies/emoji32/README.md]({PAGE}).", "",
         "## Summary", ""] + summary + [
         "", f"Splits: {label('val_unseen')}: {SPLIT_ABOUT['val_unseen']}; {label('val')}: {SPLIT_ABOUT['val']}.",
         "", f"**Setting.** {describe_recipe()}. Machines: {', '.join(cpu) or 'n/a'}.",
         "", "## Table 1 in miniature (mean ± std over seeds; new emoji first)", ""]
    main = [f"{arm}-n{n}-s0" for n in TOKENS for arm in ("textok", "baseline")]
    pending = [r for r in main if not is_converged(curves, r)]
    if pending:
        L += [f"**Not converged on {label('val')} by the 0.3 dB rule** ({len(pending)} of the {len(main)} seed-0 runs): "
              "learning-curve points at the budgets shown.", ""]
    L += table1(curves, replicas) + ["", PAPER]
    L += ["", "## Compression: fewer tokens for the same rFID", ""] + compression(curves)
    L += ["", f"## Seeds ({seeded_tokens(curves)})", ""] + seeds_table(curves)
    L += ["", "## Seed 0 against seeds 1 and 2", "", f"Seed 0 trained in stages, seeds 1-2 straight "
          f"([the investigation]({PAGE}#seed-0)).", ""] + seed0_table(curves)
    L += ["", "## Ablations at N = 2 (one seed each; compared on the same machine kind only)", ""] + ablation_table(curves)
    L += ["", "## Status: which runs have converged", ""] + status_table(curves) + (
        ["", "What the rest costs (`python studies/emoji32/reproduction.py --list`; an upper bound):", "", "```text",
         cost, "```"] if cost else [])
    L += ["", "## Convergence: the train probe beside both splits", "",
          f"PSNR on {TRAIN_PROBE} training images (the train probe), on new emoji and on recall; projections "
          "extrapolate the last two gains per doubling (an estimate).", "",
          "![train probe, val and val_unseen PSNR vs steps](../img/reproduction_convergence.png)", ""] \
        + convergence_table(curves, probes or {})
    if replicas:
        L += ["", "## Trained again on another machine", "",
              "Same recipe and seed, another machine (`python studies/emoji32/reproduction.py --job RUN --steps S "
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
