"""The reproduction study's tables, reconstruction half: Table 1 in miniature (seed means, Welch tests, the
2-std rule), compression, seeds, seed 0, ablations, convergence and the recipe checks. Each is a list of Markdown
lines computed from the score-file rows ``reproduction_report.load`` reads; nothing in them is typed by hand."""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path
from typing import Sequence

from ..stats import SPLIT_LABELS, SPLIT_MEASURES, fmt, fmt_p, join_and, pm, split_label, welch_p
from .reproduction import CONFIG, REPO, REPORT_SPLITS, SIDE_BUDGET, SPLIT_ABOUT, SPLITS, converged, study_runs

TOKENS = (1, 2, 4, 8)
PILOTS = REPO / "docs" / "results" / "reproduction" / "pilots"


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
                        parts.append(f"{split_label(split)}: no doubled budget yet")
                        continue
                    yes = converged(psnr, converged_db)
                    parts.append(f"{split_label(split)} {psnr[have[-1]] - psnr[have[-2]]:+.2f} dB from {have[-2]} to {have[-1]} "
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
                            cells.append(f"{split_label(split)} rFID {fmt(b['rfid'], 1)} -> {fmt(t['rfid'], 1)} "
                                         f"({100 * gain(b['rfid'], t['rfid']):.1f}%), PSNR {t['psnr'] - b['psnr']:+.2f} dB")
                    out.append(f"- TexTok minus baseline at {st} steps on this machine: " + "; ".join(cells) + ".")
    return out


def pick(rows, **kw):
    return [r for r in rows if all(r.get(k) == v for k, v in kw.items())]


def one(rows, **kw):
    found = pick(rows, **kw)
    return found[0] if found else None


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
            out.append(f"| {split_label(split)} | {n} | {3072 // (8 * n)}x | {c['steps']} | {k}{'' if k >= 3 else ' (seed 0)'} "
                       f"| {mean_sd(c['baseline'], 1)} | {mean_sd(c['textok'], 1)} | {100 * c['gain']:+.1f}% "
                       f"| {significance(c)} | {mean_sd(p['baseline'], 2)} | {mean_sd(p['textok'], 2)} "
                       f"| {p['difference']:+.2f} | {significance(p)} | {mean_sd(lp['baseline'], 4)} "
                       f"| {mean_sd(lp['textok'], 4)} |")
    out.append("")
    for split in REPORT_SPLITS:
        cs = [c for c in (compare(curves, n, split) for n in TOKENS) if seeded(c)]
        if cs:
            out.append(f"- Average relative rFID gain on {split_label(split)} over the N with at least 3 seeds per arm "
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
                               f"recipe, seed and budget, straight), {split_label(split)}: rFID {fmt(rb['rfid'], 1)} -> "
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
            out.append(f"- {split_label(split)}: pending (needs the baseline at N = 8 and TexTok at every N at {steps} steps).")
            continue
        rb = statistics.mean(ref)
        seeds = lambda v: f"{len(v)} seed{'s' if len(v) > 1 else ''}"  # noqa: E731
        at = lambda n: f"{statistics.mean(tex[n]):.1f} ({seeds(tex[n])})"  # noqa: E731
        match = [n for n in TOKENS if statistics.mean(tex[n]) <= rb]
        head = f"- {split_label(split)}, all at {steps} steps, the baseline's N = 8 rFID {rb:.1f} ({seeds(ref)})"
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
                parts.append(f"{split_label(split)}: the last doubling gained {gains[split][-1]:+.2f} dB, below 0.3")
            elif k is None and len(gains[split]) < 2:
                parts.append(f"{split_label(split)}: one doubling so far ({gains[split][-1]:+.2f} dB; no projection)")
            elif k is None:
                parts.append(f"{split_label(split)}: {gains[split][-2]:+.2f} then {gains[split][-1]:+.2f} dB per doubling, not "
                             "shrinking (no projection)")
            else:
                more = f"{k} more doubling{'s' if k > 1 else ''}"
                parts.append(f"{split_label(split)}: {gains[split][-2]:+.2f} then {gains[split][-1]:+.2f} dB per doubling; at that "
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
    return "N = " + join_and(ns)


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
                out.append(f"| {split_label(split)} | {n} | {steps} | {metric} | {mb:.{d}f} ± {sb:.{d}f} | {mt:.{d}f} ± {st:.{d}f} "
                           f"| {len(vals['baseline'])}/{len(vals['textok'])} | {diff:+.{d}f} | {verdict} "
                           f"| {fmt_p(p)} |")
    if len(out) == 2:
        out.append("| | | | pending: needs at least 2 seeds per arm at one common budget | | | | | | |")
    return out


ARMS = ("baseline", "textok")
LOWER_IS_BETTER = {"rfid": True, "lpips": True, "psnr": False, "ssim": False}
COMMAND = "python -m studies.emoji32.reproduction_report"  # printed beside every generated number


def report_order(splits) -> list[str]:
    """``splits`` (distinct) in the report's order: ``REPORT_SPLITS`` first (new emoji first), then any other
    in the order given."""
    splits = list(dict.fromkeys(splits))
    return [s for s in REPORT_SPLITS if s in splits] + [s for s in splits if s not in REPORT_SPLITS]


def reference_label(reference: str) -> str:
    """A generation record's reference set, ``"emoji <split> 32 px"``, with the split named as ``label`` names it."""
    return re.sub(r"^emoji (\S+) ", lambda m: f"emoji {split_label(m.group(1))} ", reference)


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
    """A ``compare`` arm's [mean, std] as "mean ± std" (the mean alone for one seed)."""
    return pm(*pair, d)


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
                out.append(f"| {split_label(split)} | {n} | {arm} | {steps} | {vals[arm][0][1]:.1f} | {others} | {k} of {m} "
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
        out.append(f"- **What the splits measure** (`textok data check data/emoji`): {split_label('val_unseen')} holds emoji "
                   f"never seen in training (0 of {twins['val_unseen']['num_images']} share a caption with `train`), "
                   f"the headline; {split_label('val')}: {t['caption_twins']} of {t['num_images']} images share their caption "
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
            out.append(f"- {split_label(split)}, {seeds} seeds per arm at {steps} steps, TexTok's {unit} over the baseline: "
                       f"{cells}; {verdict}.")
    ranks = seed0_ranks(curves, "val")
    if ranks:
        worst = [n for n, arm, k, m in ranks if arm == "baseline" and k == m]
        best = [n for n, arm, k, m in ranks if arm == "textok" and k == 1]
        out.append(f"- Seed 0 (trained in stages; seeds 1-2 straight) is the worst of {ranks[0][3]} baseline seeds on "
                   f"{split_label('val')} rFID at N = {', '.join(map(str, worst)) or 'none'} and the best TexTok seed at N = "
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
        flagged = [f"{split_label(split)} {metric.replace('rfid', 'rFID').replace('psnr', 'PSNR')}"
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
                ", ".join(f"{split_label(split)} {metric.replace('rfid', 'rFID').replace('psnr', 'PSNR')} {m:.2f} ± {sd:.2f}"
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


def category_table(by_cat: dict) -> list[str]:
    """TexTok minus baseline PSNR per category and N, and what a wrong caption costs TexTok, per split."""
    pairs = by_cat.get("pairs", [])
    if not pairs:
        return ["Pending: `python -m studies.emoji32.reproduction_report --grids` writes it from the stage models."]
    out = []
    for split in REPORT_SPLITS:
        head = " | ".join(f"N = {p['num_tokens']} ({p['steps']})" for p in pairs)
        out += ["", f"{split_label(split)}: TexTok minus baseline PSNR (dB), per category (images); last row: TexTok decoding "
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
