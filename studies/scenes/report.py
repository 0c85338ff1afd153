"""The scenes study's report: docs/results/scenes.md, docs/results/scenes/summary.json and a plot, from the score files.

Reads ``docs/results/scenes/runs/<run>.json`` (studies/scenes/run.py) and ``docs/results/scenes/swaps.json``
(studies/scenes/swaps.py). Every number on the page comes from those files; the findings at the top
are computed from the same numbers (nothing typed by hand).

    python -m studies.scenes.report                 # at the final budget of the main runs
    python -m studies.scenes.report --steps 2500    # at another scored budget

The page opens with the trained phase (issue 44: ``report_trained.py``, from ``docs/results/scenes/trained/``),
followed by this phase's section as it was.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Sequence

from ..stats import fmt, fmt_p, mean_std, pm, welch_p
from . import run as study

PAGE = study.REPO / "docs" / "results" / "scenes.md"
OUT = study.REPO / "docs" / "results" / "scenes"
METRICS = ("rfid", "psnr", "ssim", "lpips")
LOWER_IS_BETTER = {"rfid", "lpips"}
ALPHA = 0.05


def load_runs(results: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(Path(results).glob("*.json"))}


def final_budget(runs: dict[str, dict], steps: int | None) -> int | None:
    """``steps``, or the largest budget every scored main run reached."""
    if steps is not None:
        return steps
    main = [set(map(int, r["budgets"])) for r in runs.values() if r.get("group") == "main" and r.get("budgets")]
    common = set.intersection(*main) if main else set()
    return max(common) if common else None


def values(runs: dict[str, dict], steps: int, arm: str, n: int, split: str, metric: str,
           groups: Sequence[str] = ("main", "seeds")) -> list[float]:
    """The metric of every seed of (arm, N) at ``steps`` (the main run is seed 0)."""
    out = []
    for r in runs.values():
        b = r.get("budgets", {}).get(str(steps))
        if b and r["arm"] == arm and r["num_tokens"] == n and r.get("group") in groups and b.get(split, {}).get(metric) is not None:
            out.append(float(b[split][metric]))
    return out


def gain(metric: str, base: float | None, tex: float | None) -> float | None:
    """TexTok's gain over the baseline: % for rFID / LPIPS (lower is better) and SSIM, dB for PSNR."""
    if base is None or tex is None:
        return None
    if metric == "psnr":
        return tex - base
    if metric in LOWER_IS_BETTER:
        return 100 * (base - tex) / base if base else None
    return 100 * (tex - base) / base if base else None


def table1(runs: dict, steps: int) -> list[dict]:
    rows = []
    for n in (1, 2, 4, 8):
        for split in study.SPLITS:
            for metric in METRICS:
                t, b = values(runs, steps, "textok", n, split, metric), values(runs, steps, "baseline", n, split, metric)
                if not t and not b:
                    continue
                (mt, st), (mb, sb) = mean_std(t), mean_std(b)
                rows.append({"num_tokens": n, "split": split, "metric": metric, "textok": mt, "textok_std": st,
                             "baseline": mb, "baseline_std": sb, "seeds": [len(t), len(b)],
                             "gain": gain(metric, mb, mt), "p": welch_p(t, b)})
    return rows


def compression(t1: list[dict], split: str = "val") -> list[dict]:
    """The compression question, from Table 1's seed means: for each TexTok N, the largest baseline N' whose PSNR
    (rFID) TexTok at N matches or beats on ``split``; N' / N is the factor of tokens the caption saves (None: TexTok
    at N is below the baseline at every N scored, its own N included)."""
    by = {(r["num_tokens"], r["metric"]): r for r in t1 if r["split"] == split}
    better = {"psnr": lambda t, b: t >= b, "rfid": lambda t, b: t <= b}
    baseline = {metric: {n: r["baseline"] for (n, k), r in by.items() if k == metric and r["baseline"] is not None}
                for metric in better}
    rows = []
    for n in sorted({k[0] for k in by}):
        row = {"num_tokens": n, "split": split}
        for metric, beats in better.items():
            t = by.get((n, metric), {}).get("textok")
            match = max((m for m, b in baseline[metric].items() if t is not None and beats(t, b)), default=None)
            row[f"textok_{metric}"], row[f"{metric}_baseline_n"] = t, match
            row[f"{metric}_factor"] = None if match is None else match / n
            # beating the largest baseline N scored bounds the factor from below only
            row[f"{metric}_at_least"] = match is not None and match == max(baseline[metric])
        rows.append(row)
    return rows


def curve(runs: dict) -> list[dict]:
    """Val PSNR / rFID of each curve pair (both arms, seed 0) at every budget both scored."""
    rows = []
    for n in (1, 2, 4, 8):
        t, b = runs.get(f"textok-n{n}-s0"), runs.get(f"baseline-n{n}-s0")
        if not t or not b:
            continue
        for s in sorted(set(map(int, t["budgets"])) & set(map(int, b["budgets"]))):
            bt, bb = t["budgets"][str(s)], b["budgets"][str(s)]
            # past ~2 views a scene the regime turns to recall: the train-probe gaps say whether it has
            rows.append({"num_tokens": n, "steps": s, "views": views(bt),
                         **{f"{arm}_{m}": x["val"][m] for arm, x in (("textok", bt), ("baseline", bb))
                            for m in ("psnr", "rfid")},
                         **{f"{arm}_probe_gap": x["train_probe"]["psnr"] - x["val"]["psnr"]
                            for arm, x in (("textok", bt), ("baseline", bb))},
                         "psnr_gain": bt["val"]["psnr"] - bb["val"]["psnr"],
                         "rfid_gain": gain("rfid", bb["val"]["rfid"], bt["val"]["rfid"])})
    return rows


def richness(runs: dict, steps: int, bits: dict) -> list[dict]:
    """N = 1 at ``steps``: baseline (0 bits), shapes, shapes + colours, full caption."""
    rows = []
    for label, name, variant in (("no text (baseline)", "baseline-n1-s0", None), ("shapes", "textok-n1-s0-shapes", "shapes"),
                                 ("shapes + colours", "textok-n1-s0-shapes-colours", "shapes_colours"),
                                 ("full caption", "textok-n1-s0", "full")):
        b = runs.get(name, {}).get("budgets", {}).get(str(steps))
        if b:
            rows.append({"caption": label, "run": name, "bits": bits.get(variant, 0.0) if variant else 0.0,
                         **{f"{split}_{m}": b[split][m] for split in study.SPLITS for m in ("psnr", "rfid")}})
    return rows


def encoders(runs: dict, steps: int) -> list[dict]:
    rows = []
    for label, name in (("all-MiniLM-L6-v2 (22.7M, width 384)", "textok-n1-s0"),
                        ("all-mpnet-base-v2 (109M, width 768)", "textok-n1-s0-mpnet"),
                        ("all-MiniLM-L6-v2, LayerNorm before the projection", "textok-n1-s0-ln"),
                        ("all-mpnet-base-v2, LayerNorm before the projection", "textok-n1-s0-mpnet-ln")):
        b = runs.get(name, {}).get("budgets", {}).get(str(steps))
        if b:
            rows.append({"encoder": label, "run": name, **{f"{split}_{m}": b[split][m] for split in study.SPLITS
                                                           for m in ("psnr", "rfid")}})
    if rows and rows[0]["run"] == "textok-n1-s0":  # MiniLM's seed spread at N = 1 (main + seeds runs)
        rows[0]["val_psnr_seeds"] = values(runs, steps, "textok", 1, "val", "psnr")
    return rows


def probe_gap(runs: dict, steps: int) -> list[dict]:
    rows = []
    for name, r in sorted(runs.items()):
        b = r.get("budgets", {}).get(str(steps))
        if b and "train_probe" in b:
            rows.append({"run": name, "train_psnr": b["train_probe"]["psnr"], "val_psnr": b["val"]["psnr"],
                         "gap": b["train_probe"]["psnr"] - b["val"]["psnr"]})
    return rows


def views(budget: dict) -> float | None:
    """How often each training scene was seen by a scored budget (steps x batch / training scenes; None when its
    score file records no data recipe)."""
    count = ((budget.get("data") or {}).get("recipe") or {}).get("count")
    return budget["steps"] * budget["effective_config"]["optim"]["batch_size"] / count if count else None


def setting(runs: dict, steps: int | None) -> dict:
    """What the scores at ``steps`` were trained and scored on, read from a score file: the training set size,
    batch, views of each training scene, images scored per split, CPU."""
    for r in runs.values():
        b = r.get("budgets", {}).get(str(steps))
        if b:
            return {"train_scenes": ((b.get("data") or {}).get("recipe") or {}).get("count"),
                    "batch_size": b["effective_config"]["optim"]["batch_size"], "steps": steps,
                    "eval_num": b.get("eval_num"), "views": views(b), "cpu": b.get("cpu")}
    return {}


def verdict(t1: list[dict], threshold_db: float = 0.3) -> str | None:
    """One computed sentence: does text give a PSNR gain beyond ``threshold_db`` on val at any N scored?"""
    gains = {r["num_tokens"]: r["gain"] for r in t1 if r["split"] == "val" and r["metric"] == "psnr"
             and r["gain"] is not None}
    if not gains:
        return None
    big = {n: g for n, g in gains.items() if g >= threshold_db}
    seeds = {r["num_tokens"]: r["seeds"] for r in t1 if r["split"] == "val" and r["metric"] == "psnr"}
    scored = ("; scored: " + ", ".join(f"N = {n} ({seeds[n][0]} vs {seeds[n][1]} seeds)" for n in sorted(seeds))
              + (", every other N pending" if len(seeds) < 4 else ""))
    if big:
        return (f"**Verdict:** text gives a PSNR gain of at least {threshold_db} dB on val at N = "
                + ", ".join(str(n) for n in sorted(big)) + scored + ".")
    return (f"**Verdict:** at this budget no N gains {threshold_db} dB of PSNR from the caption (val gains "
            + ", ".join(f"{fmt(g, 2, True)} dB at N = {n}" for n, g in sorted(gains.items()))
            + f"{scored}): the caption is not yet freeing the tokens here; see studies/scenes/README.md.")


def findings(t1: list[dict], curve_rows: list[dict], rich: list[dict], enc: list[dict], gaps: list[dict],
             swaps: dict | None) -> list[str]:
    """The findings list, every number read from the tables above it."""
    out = []
    # N where both arms are scored: a finding compares them
    val_psnr = {r["num_tokens"]: r for r in t1 if r["split"] == "val" and r["metric"] == "psnr"
                and r["textok"] is not None and r["baseline"] is not None}
    val_rfid = {r["num_tokens"]: r for r in t1 if r["split"] == "val" and r["metric"] == "rfid"}
    for n, r in sorted(val_psnr.items()):
        f = val_rfid.get(n, {})
        sig = ("" if r["p"] is None else f", Welch p = {r['p']:.3g} over {r['seeds'][0]} vs {r['seeds'][1]} seeds"
               + (" (significant)" if r["p"] < ALPHA else " (not significant)"))
        out.append(f"N = {n}: TexTok {fmt(r['gain'], 2, True)} dB PSNR, rFID {fmt(f.get('textok'), 1)} vs "
                   f"{fmt(f.get('baseline'), 1)} ({fmt(f.get('gain'), 1, True)}%) on val{sig}.")
    gains = [(n, r["gain"], r["seeds"][0]) for n, r in sorted(val_psnr.items()) if r["gain"] is not None]
    if len(gains) >= 2:
        steps_ = [b[1] - a[1] for a, b in zip(gains, gains[1:])]
        trend = ("shrinks with N" if all(d < 0 for d in steps_) else "grows with N" if all(d > 0 for d in steps_)
                 else "does not change monotonically with N")
        out.append(f"The PSNR gain {trend}: " + ", ".join(
            f"{fmt(g, 2, True)} dB at N = {n} ({k} seed{'s' if k > 1 else ''})" for n, g, k in gains) + ".")
    squeeze = [r for r in compression(t1) if r["psnr_baseline_n"] is not None and r["psnr_baseline_n"] > r["num_tokens"]]
    if len({r["num_tokens"] for r in t1 if r["split"] == "val" and r["metric"] == "psnr"}) >= 2:
        out.append("Compression (val PSNR, seed means): " + ("; ".join(
            f"TexTok at N = {r['num_tokens']} matches the baseline at N = {r['psnr_baseline_n']} "
            f"({'at least ' if r['psnr_at_least'] else ''}{r['psnr_factor']:g}x fewer tokens)" for r in squeeze)
            if squeeze else
            "no TexTok N matches the baseline at a larger N") + ".")
    comp = {r["num_tokens"]: r for r in t1 if r["split"] == "val_compositional" and r["metric"] == "psnr"
            and r["gain"] is not None}
    if comp:
        out.append("Held-out colour-shape pairs (val_compositional): PSNR gain " + ", ".join(
            f"{fmt(r['gain'], 2, True)} dB at N = {n}" for n, r in sorted(comp.items())) + ".")
    by_n: dict[int, list[dict]] = {}
    for r in curve_rows:
        by_n.setdefault(r["num_tokens"], []).append(r)
    for n, rows in sorted(by_n.items()):
        if len(rows) > 1:
            views = [r for r in rows if r.get("views")]
            out.append(f"Learning curve at N = {n}: PSNR gain " + ", ".join(
                f"{fmt(r['psnr_gain'], 2, True)} dB at {r['steps']}" for r in rows) + " steps" + (
                f" ({views[-1]['views']:.1f} views of each training scene at {views[-1]['steps']}; train probe − val "
                f"there: TexTok {fmt(views[-1]['textok_probe_gap'], 2, True)} dB, baseline "
                f"{fmt(views[-1]['baseline_probe_gap'], 2, True)} dB)" if views else "") + ".")
    if len(rich) > 1:
        base = next((r["val_psnr"] for r in rich if r["run"].startswith("baseline")), None)
        out.append("Caption richness at N = 1 (val PSNR, gain over no text): " + ", ".join(
            f"{r['caption']} ({r['bits']:.1f} bits) {fmt(r['val_psnr'])} dB"
            + ("" if base is None or r["run"].startswith("baseline") else f" ({fmt(r['val_psnr'] - base, 2, True)})")
            for r in rich) + ".")
    by_run = {r["run"]: r for r in enc}
    minilm, mpnet = by_run.get("textok-n1-s0"), by_run.get("textok-n1-s0-mpnet")
    if minilm and mpnet:
        seeds = minilm.get("val_psnr_seeds", [])  # every MiniLM seed at N = 1: the yardstick for one mpnet run
        spread = (f"; MiniLM over {len(seeds)} seeds: {fmt(statistics.mean(seeds))} ± "
                  f"{fmt(statistics.stdev(seeds))} dB, so mpnet is {fmt(mpnet['val_psnr'] - statistics.mean(seeds), 2, True)}"
                  " dB from their mean" if len(seeds) > 1 else "")
        out.append(f"Encoder size at N = 1, seed 0: mpnet {fmt(mpnet['val_psnr'])} dB vs MiniLM "
                   f"{fmt(minilm['val_psnr'])} dB val PSNR ({fmt(mpnet['val_psnr'] - minilm['val_psnr'], 2, True)} dB)"
                   f"{spread}.")
    minilm, mpnet = by_run.get("textok-n1-s0-ln"), by_run.get("textok-n1-s0-mpnet-ln")
    if minilm and mpnet:
        out.append(f"With a LayerNorm before the text projection (the encoders' scales equalised): mpnet "
                   f"{fmt(mpnet['val_psnr'])} dB vs MiniLM {fmt(minilm['val_psnr'])} dB val PSNR "
                   f"({fmt(mpnet['val_psnr'] - minilm['val_psnr'], 2, True)} dB).")
    if gaps:
        worst = max(gaps, key=lambda g: abs(g["gap"]))
        out.append(f"Train probe vs val: largest PSNR gap {fmt(worst['gap'], 2, True)} dB ({worst['run']}); "
                   f"median {fmt(statistics.median(g['gap'] for g in gaps), 2, True)} dB over {len(gaps)} runs.")
    if swaps:
        for name, r in swaps.get("runs", {}).items():
            rates = r["rates"]
            out.append(f"Swaps, {name}: the decoded image follows the caption's colour {rates['colour']['followed']:.0%}, "
                       f"position {rates['position']['followed']:.0%}, background {rates['background']['followed']:.0%} "
                       f"of the time ({r['num_images']} val scenes).")
    return out or ["No run has been scored yet."]


def plot(t1: list[dict], curve_rows: list[dict], rich: list[dict], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for split, style in zip(study.SPLITS, ("o-", "s--")):
        rows = sorted((r for r in t1 if r["split"] == split and r["metric"] == "psnr" and r["gain"] is not None),
                      key=lambda r: r["num_tokens"])
        axes[0].plot([r["num_tokens"] for r in rows], [r["gain"] for r in rows], style, label=split)
    axes[0].set(xscale="log", xlabel="tokens N (x 8 channels)", ylabel="PSNR gain of TexTok (dB)", title="gain vs N")
    axes[0].set_xticks([1, 2, 4, 8], ["1", "2", "4", "8"])
    axes[0].minorticks_off()  # else the log axis labels 3 and 6 as 3x10^0, 6x10^0
    axes[0].axhline(0, color="grey", lw=0.5)
    axes[0].legend()
    for n in sorted({r["num_tokens"] for r in curve_rows}):
        rows = [r for r in curve_rows if r["num_tokens"] == n]
        axes[1].plot([r["steps"] for r in rows], [r["psnr_gain"] for r in rows], "o-", label=f"N = {n}")
    axes[1].set(xlabel="training steps", ylabel="PSNR gain (dB)", title="learning curve (val)")
    axes[1].axhline(0, color="grey", lw=0.5)
    if curve_rows:
        axes[1].legend()
    axes[2].plot([r["bits"] for r in rich], [r["val_psnr"] for r in rich], "o-", label="val")
    axes[2].plot([r["bits"] for r in rich], [r["val_compositional_psnr"] for r in rich], "s--", label="val_compositional")
    axes[2].set(xlabel="caption information (bits)", ylabel="PSNR (dB)", title="caption richness, N = 1")
    if rich:
        axes[2].legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def summarize(runs: dict, steps: int | None, swaps: dict | None, bits: dict) -> dict:
    """Everything the page and the plot show (summary.json), computed once from the score files."""
    t1 = table1(runs, steps) if steps else []
    return {"steps": steps, "setting": setting(runs, steps), "caption_bits": bits, "table1": t1,
            "compression": compression(t1), "curve": curve(runs), "richness": richness(runs, steps, bits) if steps else [],
            "encoders": encoders(runs, steps) if steps else [], "train_probe_gap": probe_gap(runs, steps) if steps else [],
            "swaps": swaps, "runs_scored": sorted(runs)}


def render(summary: dict, plotted: bool, out_rel: str) -> str:
    """The Markdown page of a ``summarize`` result."""
    steps, st, t1, comp, cur = summary["steps"], summary["setting"], summary["table1"], summary["compression"], summary["curve"]
    rich, enc, gaps, swaps = summary["richness"], summary["encoders"], summary["train_probe_gap"], summary["swaps"]
    L = ["# Scenes: does the caption free the tokens? (issue 36)", "",
         f"Generated by `studies/scenes/report.py` from `docs/results/scenes/runs/*.json` "
         f"({len(summary['runs_scored'])} run(s) scored; budget {steps if steps else 'none yet'} steps). "
         "Study design and commands: [studies/scenes/README.md](../../studies/scenes/README.md).", ""]
    if st:
        L += [f"Setting: {st['train_scenes']} training scenes, batch {st['batch_size']}, {st['steps']} steps "
              f"({st['views']:.2f} views of each training scene), {st['eval_num'] or 'every'} evenly spaced images "
              f"scored per split (rFID over so few images is biased upwards, equally for both arms), one thread of "
              f"{st['cpu']}.", ""]
    v = verdict(t1)
    L += ([v, ""] if v else []) + ["## Findings", ""]
    L += [f"- {f}" for f in findings(t1, cur, rich, enc, gaps, swaps)]
    if plotted:
        L += ["", f"![gain vs N, learning curve, caption richness]({out_rel}/scenes.png)"]
    L += ["", "## Table 1: TexTok vs the no-text baseline", "", *table1_lines(t1)]
    L += ["", "## Compression: fewer tokens for the same quality (val)", "", *compression_lines(comp)]
    L += ["", "## Learning curve (seed 0, val)", "", "Views: how often each training scene was seen by then; probe gap: "
          "train-probe PSNR − val PSNR (near 0: new scenes are reconstructed as well as trained ones, no recall).", "",
          "| N | steps | views | TexTok PSNR | baseline PSNR | gain (dB) | TexTok rFID | baseline rFID | rFID gain | "
          "probe gap TexTok / baseline |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in cur:
        views = "–" if r.get("views") is None else f"{r['views']:.2f}"
        L.append(f"| {r['num_tokens']} | {r['steps']} | {views} | {fmt(r['textok_psnr'])} | {fmt(r['baseline_psnr'])} | "
                 f"{fmt(r['psnr_gain'], 2, True)} | {fmt(r['textok_rfid'], 1)} | {fmt(r['baseline_rfid'], 1)} | "
                 f"{fmt(r['rfid_gain'], 1, True)}{'' if r['rfid_gain'] is None else '%'} | "
                 f"{fmt(r['textok_probe_gap'], 2, True)} / "
                 f"{fmt(r['baseline_probe_gap'], 2, True)} |")
    L += ["", "## Caption richness (N = 1)", "",
          "Bits: entropy of the caption variant under the training distribution (`textok.data.scenes.caption_bits`).",
          "", "| caption | bits | val PSNR | val rFID | compositional PSNR | compositional rFID |", "|---|---|---|---|---|---|"]
    for r in rich:
        L.append(f"| {r['caption']} | {r['bits']:.1f} | {fmt(r['val_psnr'])} | {fmt(r['val_rfid'], 1)} | "
                 f"{fmt(r['val_compositional_psnr'])} | {fmt(r['val_compositional_rfid'], 1)} |")
    L += ["", "## Text encoder size (N = 1)", "", "| encoder | val PSNR | val rFID | compositional PSNR | compositional rFID |",
          "|---|---|---|---|---|"]
    for r in enc:
        L.append(f"| {r['encoder']} | {fmt(r['val_psnr'])} | {fmt(r['val_rfid'], 1)} | {fmt(r['val_compositional_psnr'])} | "
                 f"{fmt(r['val_compositional_rfid'], 1)} |")
    views = f"each scene seen {st['views']:.2f} times" if st.get("views") else "each scene seen about once"
    L += ["", "## Train probe vs val", "", f"PSNR on {study.TRAIN_PROBE} evenly spaced training scenes vs val: in this "
          f"regime ({views}) they should agree.", "", "| run | train probe PSNR | val PSNR | gap |",
          "|---|---|---|---|"]
    for r in gaps:
        L.append(f"| {r['run']} | {fmt(r['train_psnr'])} | {fmt(r['val_psnr'])} | {fmt(r['gap'], 2, True)} |")
    L += ["", "## What the caption controls: swaps", "", *swaps_lines(swaps, out_rel, "python -m studies.scenes.swaps")]
    return "\n".join(L) + "\n"


def table1_lines(t1: list[dict]) -> list[str]:
    """Table 1 (``table1``'s rows) in Markdown, with the sentence that reads it."""
    L = ["Mean ± std over the seeds scored (the seeds column of summary.json; one seed: no std, no p). Gain: dB for "
         "PSNR, % for the others "
         "(positive = TexTok better); p: Welch's t-test over seeds.", "",
         "| N | split | metric | TexTok | baseline | gain | p |", "|---|---|---|---|---|---|---|"]
    for r in t1:
        d = 1 if r["metric"] == "rfid" else (2 if r["metric"] == "psnr" else 3)
        L.append(f"| {r['num_tokens']} | {r['split']} | {r['metric']} | {pm(r['textok'], r['textok_std'], d)} | "
                 f"{pm(r['baseline'], r['baseline_std'], d)} | {fmt(r['gain'], 2, True)}"
                 f"{'' if r['metric'] == 'psnr' else '%'} | {fmt_p(r['p'])} |")
    return L


def compression_lines(comp: list[dict]) -> list[str]:
    """The compression table (``compression``'s rows) in Markdown, with the sentence that reads it."""
    L = ["For each TexTok N, the largest baseline N' that TexTok at N matches or beats (Table 1's seed means); "
         "N' / N is the factor of tokens the caption saves (– : below the baseline at every N scored; ≥ : it beats "
         "the largest baseline N scored, so the factor may be larger).", "",
         "| TexTok N | TexTok PSNR | matches baseline N' (PSNR) | factor | TexTok rFID | matches baseline N' (rFID) | factor |",
         "|---|---|---|---|---|---|---|"]
    for r in comp:
        factor = {m: ("≥" if r[f"{m}_at_least"] else "") + f"{r[f'{m}_factor']:g}x" if r[f"{m}_factor"] else "–"
                  for m in ("psnr", "rfid")}
        L.append(f"| {r['num_tokens']} | {fmt(r['textok_psnr'])} | {r['psnr_baseline_n'] or '–'} | {factor['psnr']} | "
                 f"{fmt(r['textok_rfid'], 1)} | {r['rfid_baseline_n'] or '–'} | {factor['rfid']} |")
    return L


def swaps_lines(swaps: dict | None, out_rel: str, command: str) -> list[str]:
    """The swap table of a ``swaps.json`` and its picture (``out_rel``/swaps.png), or the ``command`` that makes it."""
    if not swaps:
        return [f"Pending: `{command}`."]
    L = ["The same tokens decoded with a caption where one factor is changed (`studies/scenes/swaps.py`). "
         "Followed: the detector sees the new value; exact: and the other objects keep their colours. "
         "Control: decoded with the image's own caption (followed = the whole scene is detected as captioned).", "",
         "| tokenizer | steps | images | control | colour | position | background | CPU |",
         "|---|---|---|---|---|---|---|---|"]
    for name, r in swaps["runs"].items():
        rt = r["rates"]
        cells = " | ".join(f"{rt[f]['followed']:.0%} ({rt[f]['exact']:.0%} exact)"
                           for f in ("control", "colour", "position", "background"))
        L.append(f"| {name} | {r['steps']} | {r['num_images']} | {cells} | {r.get('cpu') or swaps.get('cpu')} |")
    return L + ["", f"![swaps]({out_rel}/swaps.png)"]


README_MARKERS = ("<!-- scenes table: studies/scenes/report.py -->", "<!-- end scenes table -->")
README_SPLITS = {"val": "new scenes", "val_compositional": "held-out colour-shape pairs"}
README_PROMPTS = {"val": "captions of new scenes", "val_compositional": "captions with held-out pairs"}


def headline_generation_rows(generation: dict | None) -> dict[tuple[int, str], dict]:
    """(N, split) -> the text-to-image summary's first row there: the many-step sampler at the config's guidance
    (``studies.scenes.t2i.generation_summary`` orders them so)."""
    rows: dict[tuple[int, str], dict] = {}
    for r in (generation or {}).get("rows", []):
        rows.setdefault((r["num_tokens"], r["split"]), r)
    return rows


def readme_rows(t1: list[dict], generation: dict | None) -> list[str]:
    """The README's scenes table (the trained phase): per N, TexTok vs the baseline on reconstruction (val PSNR,
    val rFID, held-out pairs' PSNR; seed means) and, where DiTs are scored, text-to-image (the whole scene read back
    right, many-step sampler, and gFID), each with its seeds and Welch p."""
    L = ["| task | N | measure | seeds per arm | no-text baseline | TexTok | p |", "|---|---:|---|---:|---:|---:|---:|"]
    by = {(r["num_tokens"], r["split"], r["metric"]): r for r in t1}
    ns = sorted({k[0] for k in by})
    for n in ns:
        # the smallest N in full, the others by val PSNR alone: the README stays short as N are added
        for split, metric, label in (("val", "psnr", "PSNR (dB) ↑"), ("val", "rfid", "rFID ↓"),
                                     ("val_compositional", "psnr", "PSNR (dB) ↑"))[:3 if n == ns[0] else 1]:
            r = by.get((n, split, metric))
            if r and r["baseline"] is not None and r["textok"] is not None:  # a comparison: both arms scored
                L.append(f"| reconstruction, {README_SPLITS[split]} | {n} | {label} | {min(r['seeds'])} | "
                         f"{pm(r['baseline'], r['baseline_std'], 2 if metric == 'psnr' else 1)} | "
                         f"{pm(r['textok'], r['textok_std'], 2 if metric == 'psnr' else 1)} | {fmt_p(r['p'])} |")
    many = headline_generation_rows(generation)
    pct = lambda ms: pm(*(None if v is None else 100 * v for v in ms), 1) + "%"  # noqa: E731
    first_n = min((n for n, _ in many), default=None)
    for (n, split), r in sorted(many.items()):
        a = r["arms"]
        if set(a) != {"textok", "baseline"} or (n != first_n and split != "val"):
            continue  # as above: the smallest N in full, the others by the whole scene on val captions alone
        seeds = min(a["textok"]["dit_seeds"], a["baseline"]["dit_seeds"])
        L.append(f"| text-to-image, {README_PROMPTS[split]} | {n} | whole scene right ↑ | {seeds} | "
                 f"{pct(a['baseline']['images']['exact'])} | {pct(a['textok']['images']['exact'])} | "
                 f"{fmt_p(r['welch_p']['exact'])} |")
        if n == first_n and a["textok"]["gfid"][0] is not None and a["baseline"]["gfid"][0] is not None:
            num = ", ".join(map(str, a["textok"].get("gfid_num") or [])) or "?"
            L.append(f"| text-to-image, {README_PROMPTS[split]} | {n} | gFID ↓ ({num} samples) | {seeds} | "
                     f"{pm(*a['baseline']['gfid'], 1)} | {pm(*a['textok']['gfid'], 1)} | {fmt_p(r['welch_p']['gfid'])} |")
    return L


def readme_table(readme: Path, t1: list[dict], generation: dict | None, st: dict) -> bool:
    """Write the README's scenes table (``readme_rows``) between README_MARKERS; False (and the file untouched) when
    the markers are missing or nothing is scored."""
    from textok.io import write_text_atomic

    if not readme.is_file() or not t1:
        return False
    text = readme.read_text()
    start, end = README_MARKERS
    if start not in text or end not in text:
        print(f"[report] {readme}: no scenes-table markers; skipped", flush=True)
        return False
    note = (f"Printed by `python -m studies.scenes.report` from the score files ({st.get('train_scenes')} training "
            f"scenes, 300 evenly spaced images scored per split, text-to-image from every caption of the split; "
            f"{st.get('cpu')}); "
            "mean ± std over seeds, Welch p. Full report: [docs/results/scenes.md](docs/results/scenes.md).")
    block = "\n".join([note, "", *readme_rows(t1, generation)])
    head, rest = text.split(start, 1)
    write_text_atomic(readme, head + start + "\n" + block + "\n" + end + rest.split(end, 1)[1])
    return True


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=None, help="the first phase's budget (default: its main runs' last)")
    p.add_argument("--results", type=Path, default=study.RESULTS, help="the first phase's score files")
    p.add_argument("--out", type=Path, default=OUT,
                   help="summary.json, scenes.png (and swaps.json is read here); the trained phase's in OUT/trained")
    p.add_argument("--trained-results", type=Path, default=None,
                   help="the trained phase's score files (default: OUT/trained/runs)")
    p.add_argument("--trained-data", default=study.PHASES["trained"].data,
                   help="the trained phase's data set (the evaluation splits' overlap with its training set)")
    p.add_argument("--max-steps", type=int, default=None,
                   help="the trained phase's cap for score files that record none (default: the driver's)")
    p.add_argument("--page", type=Path, default=PAGE)
    args = p.parse_args(argv)
    from . import report_trained  # imports this module: loaded here, not at the top

    trained_out = args.out / "trained"
    trained, trained_summary = report_trained.build(args.trained_results or trained_out / "runs", trained_out, args.trained_data,
                                      args.page.parent, args.max_steps)
    from textok.data.scenes import caption_bits
    from textok.io import write_json_atomic, write_text_atomic

    runs = load_runs(args.results)
    steps = final_budget(runs, args.steps)
    swaps_file = args.out / "swaps.json"
    swaps = json.loads(swaps_file.read_text()) if swaps_file.is_file() else None
    bits = {k: round(v, 2) for k, v in caption_bits().items()}
    summary = summarize(runs, steps, swaps, bits)
    plotted = plot(summary["table1"], summary["curve"], summary["richness"], args.out / "scenes.png")
    try:
        out_rel = args.out.resolve().relative_to(args.page.resolve().parent).as_posix()
    except ValueError:
        out_rel = args.out.resolve().as_posix()
    page = trained + "\n" + render(summary, plotted, out_rel)  # the trained phase first: it is the newer evidence
    write_text_atomic(args.page, page)
    if args.page.resolve() == PAGE.resolve():  # the study's own page: the README's scenes table too (not a test's)
        readme_table(study.REPO / "README.md", trained_summary["table1"], trained_summary.get("generation"),
                     trained_summary["setting"])
    write_json_atomic(args.out / "summary.json", summary)
    print(f"[report] {args.page} (first phase: {len(runs)} runs, budget {steps}; trained phase: "
          f"{len(trained_summary['runs_final'])} of {len(trained_summary['plateau'])} runs at their final rung)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
