"""The scenes study's trained phase (issue 44) on the report's page: trained tokenizers and where the text goes.

Reads the trained phase's score files (``docs/results/scenes/trained/runs/<run>.json``, written by
``python -m studies.scenes.run --phase trained``), its swaps (``docs/results/scenes/trained/swaps.json``) and the
data set's ``captions.jsonl`` (the split overlap). Every run is reported at its final rung (plateau or cap:
``run.ladder_status`` under the cap its score file records); runs still climbing are listed with the command that
resumes them, so every section renders with partial results. ``studies/scenes/report.py`` puts this section above
the first phase's on docs/results/scenes.md and calls ``build``, which writes ``trained/summary.json`` and
``trained/curves.png``.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..stats import fmt, fmt_p, join_and, mean_std, pm, welch_p
from . import report as first  # Table 1, the compression table, the findings' sentences, the swap table
from . import run as study

PHASE = study.PHASES["trained"]
CURVE_N = (1, 8)  # the learning curves' N (the issue's)
# The placement ablation's rows: label, run name; "both" is the main TexTok run and "none" the baseline
PLACEMENT_ROWS = (("encoder and decoder, in-context (TexTok)", "textok-n{n}-s{s}"),
                  ("encoder only", "textok-n{n}-s{s}-text-encoder"),
                  ("decoder only", "textok-n{n}-s{s}-text-decoder"),
                  ("none (the baseline)", "baseline-n{n}-s{s}"),
                  ("encoder and decoder, cross-attention", "textok-n{n}-s{s}-cross-attention"))
PLACEMENT_N = (1, 4)
RESUME = "python -m studies.scenes.run --phase trained --runs"


def statuses(runs: dict[str, dict], max_steps: int) -> dict[str, dict]:
    """run -> its ladder status (``run.recorded_status``: under the cap its score file records, else ``max_steps``)."""
    return {name: study.recorded_status(r, max_steps) for name, r in runs.items()}


def at_final(runs: dict[str, dict], status: dict[str, dict]) -> dict[str, dict]:
    """The runs whose final rung is known, each record with that budget alone, keyed ``"final"``: what
    ``report.table1`` / ``report.values`` read as the budget ``"final"``, so Table 1 is the first phase's function."""
    return {name: dict(r, budgets={"final": r["budgets"][str(status[name]["final"])]})
            for name, r in runs.items() if status[name]["final"] is not None}


def missing_final_rfid(record: dict, final: int | None) -> list[str]:
    """The splits whose rFID the final rung lacks (the driver adds them from the stage model)."""
    b = record.get("budgets", {}).get(str(final))
    return [s for s in study.SPLITS if b is not None and b[s].get("rfid") is None]


def plateau_rows(runs: dict[str, dict], status: dict[str, dict]) -> list[dict]:
    """Every run of the phase in the driver's order: the rungs scored with their val PSNR, the plateau status, the
    gain over the last doubling, training seconds to the newest rung, and whether it is pending (still climbing, not
    started, or its final rung lacks an rFID)."""
    rows = []
    for run in PHASE.runs():
        r, st = runs.get(run.name, {}), status.get(run.name)
        budgets = sorted(int(b) for b in r.get("budgets", {}))
        newest = r["budgets"][str(budgets[-1])] if budgets else None
        gains = (st or {}).get("gains", {})
        rows.append({"run": run.name, "group": run.group, "arm": run.arm, "num_tokens": run.num_tokens,
                     "seed": run.seed, "budgets": budgets,
                     "val_psnr": [r["budgets"][str(b)]["val"]["psnr"] for b in budgets],
                     "status": st["status"] if budgets else "not started", "final": (st or {}).get("final"),
                     "next": (st or {}).get("next", study.LADDER_START),
                     "max_steps": (st or {}).get("max_steps"),
                     "last_gain": gains.get(str(budgets[-1])) if budgets else None,
                     "train_seconds": newest["train_seconds_total"] if newest else None,
                     "threads": sorted({r["budgets"][str(b)].get("threads") for b in budgets} - {None}),
                     "cpu": sorted({r["budgets"][str(b)].get("cpu") for b in budgets} - {None}),
                     "missing_rfid": missing_final_rfid(r, (st or {}).get("final"))})
        rows[-1]["pending"] = rows[-1]["status"] in ("training", "not started") or bool(rows[-1]["missing_rfid"])
    return rows


def placement(final: dict[str, dict]) -> list[dict]:
    """The text-placement ablation at PLACEMENT_N over ``run.PLACEMENT_SEEDS`` (the same seeds in every row), each
    run at its final rung: val / val_compositional PSNR and rFID (mean, std), and the val PSNR difference from text
    in both (Welch p over seeds)."""
    rows = []
    for n in PLACEMENT_N:
        both = None
        for label, pattern in PLACEMENT_ROWS:
            recs = [final[name]["budgets"]["final"] for s in study.PLACEMENT_SEEDS
                    if (name := pattern.format(n=n, s=s)) in final]
            row = {"num_tokens": n, "text": label, "runs": [pattern.format(n=n, s=s) for s in study.PLACEMENT_SEEDS],
                   "seeds": len(recs), "steps": sorted({b["steps"] for b in recs})}
            vals = {f"{split}_{m}": [b[split][m] for b in recs if b[split].get(m) is not None]
                    for split in study.SPLITS for m in ("psnr", "rfid")}
            for key, xs in vals.items():
                row[key], row[f"{key}_std"] = mean_std(xs)
            if both is None:
                both = vals["val_psnr"]
                row["val_psnr_vs_both"] = row["p_vs_both"] = None
            else:
                m = mean_std(both)[0]
                row["val_psnr_vs_both"] = None if m is None or row["val_psnr"] is None else row["val_psnr"] - m
                row["p_vs_both"] = welch_p(vals["val_psnr"], both)
            rows.append(row)
    return rows


# Side folders under trained/: score files outside every table above, by folder: the section's heading, what its runs
# are and how to resume them, and where the arms are compared ("newest": the largest rung any run reached, runs that
# did not reach it left out; "final": each run at its final rung, plateau or cap, as in Table 1).
SIDE_RUNS = {
    "beyond_cap": ("beyond the cap (side runs)",
                   "Pairs continued past the cap to see how far it is from the plateau, outside every table above: "
                   "each score file is a copy of the run's file in `runs/`, climbed with `python -m studies.scenes.run "
                   "--phase trained --results docs/results/scenes/trained/beyond_cap --max-steps 16000 --runs NAME` "
                   "(the same work folder, so it resumes from the cap's checkpoint), or, where that checkpoint was on "
                   "another host, a fresh ladder from step 0 with the same command (every rung then from the CPU "
                   "named). Gain: the newest rung over the one half as long; rFID at the newest rung.", "newest"),
    "record5": ("the speedrun's record 5 up the ladder (side runs)",
                "The speedrun's record 5 with the caption in both (`configs/scenes32_speedrun_both.yaml`: width 64, "
                "Muon everywhere, ReLU squared, EMA 0.98; 69.8 s to 27 dB in docs/results/speedrun.md) on the same "
                "data and ladder, each run at most 64,000 steps (a session's budget; the issue's cap of about 2 h of a "
                "2-core machine would allow 128,000), one thread each, two runs side by side: `python -m "
                "studies.scenes.run --phase trained --config configs/scenes32_speedrun_both.yaml --results "
                "docs/results/scenes/trained/record5 --work WORK --max-steps 64000 --workers 2 --threads 1 --runs "
                "NAME ...` (resumes a run from its last checkpoint in WORK). Outside every table above: another "
                "recipe. Status: the plateau rule under that cap; gain: the newest rung over the one half as long; "
                "rFID at the final rung.", "final"),
    "record5_past_plateau": ("the speedrun's record 5 past a plateau (side runs)",
                             "Runs of `record5/` that the plateau rule stopped, climbed on with the rule off (a copy "
                             "of the score file, the same work folder: `python -m studies.scenes.run --phase trained "
                             "--config configs/scenes32_speedrun_both.yaml --results "
                             "docs/results/scenes/trained/record5_past_plateau --work WORK --max-steps STEPS "
                             "--plateau-db=-inf --threads 1 --runs NAME`): does the plateau hold? Outside every table "
                             "above.", "newest"),
}


def side_runs(folder: Path) -> dict[str, dict]:
    """The score files of a side folder (``SIDE_RUNS``), by run name; runs without a scored rung are left out."""
    if not Path(folder).is_dir():
        return {}
    return {name: r for name, r in first.load_runs(folder).items() if r.get("budgets")}


def side_rows(runs: dict[str, dict], status: dict[str, dict]) -> list[dict]:
    """Per side run (``side_runs``): its rungs with their val PSNR, its ladder status (``status``: ``statuses``), the
    gain of the newest rung over the one half as long, the val rFID there, the training seconds to it and its CPUs."""
    rows = []
    for name, r in runs.items():
        budgets = {int(b): v for b, v in r["budgets"].items()}
        steps = sorted(budgets)
        psnr = {b: budgets[b]["val"]["psnr"] for b in steps}
        top = steps[-1]
        rows.append({"run": name, "budgets": steps, "val_psnr": [psnr[b] for b in steps],
                     "status": status[name]["status"],
                     "last_gain": psnr[top] - psnr[top // 2] if top // 2 in psnr else None,
                     "val_rfid": budgets[top]["val"].get("rfid"),
                     "train_seconds": budgets[top].get("train_seconds_total"),
                     "cpu": sorted({v.get("cpu") for v in budgets.values()} - {None})})
    return rows


def side_tables(runs: dict[str, dict], compare: str, status: dict[str, dict]) -> dict | None:
    """Seed means of side runs (``side_runs``) where ``compare`` says (``SIDE_RUNS``): at the largest rung any of them
    reached ("newest"; runs that did not reach it are left out) or each run at its final rung ("final"; runs still
    climbing are left out; ``status``: ``statuses``). Table 1's val PSNR and rFID rows (``first.table1``, Welch p
    over seeds), the compression rows read from them, and TexTok at N against the baseline at every larger N'."""
    if compare == "final":
        runs, top = at_final(runs, status), "final"
    else:
        top = max((int(b) for r in runs.values() for b in r["budgets"]), default=None)
    if not runs:
        return None
    rows = [r for r in first.table1(runs, top) if r["split"] == "val" and r["metric"] in ("psnr", "rfid")]
    # TexTok at N against the baseline at every larger N' (the compression question with its Welch p)
    ns = {arm: sorted({r["num_tokens"] for r in runs.values() if r["arm"] == arm}) for arm in ("textok", "baseline")}
    cross = []
    for n in ns["textok"]:
        for m in (m for m in ns["baseline"] if m > n):
            t, b = (first.values(runs, top, arm, k, "val", "psnr") for arm, k in (("textok", n), ("baseline", m)))
            if t and b:
                (mt, st), (mb, sb) = mean_std(t), mean_std(b)
                cross.append({"textok_n": n, "baseline_n": m, "textok": mt, "textok_std": st, "baseline": mb,
                              "baseline_std": sb, "seeds": [len(t), len(b)], "difference": mt - mb, "p": welch_p(t, b)})
    return {"steps": top, "table1": rows, "compression": first.compression(rows), "cross": cross}


def side_lines(folder: str, side: dict) -> list[str]:
    """A side folder's section (``SIDE_RUNS``): its runs' rows, then the seed means where its arms are compared."""
    heading, about, _ = SIDE_RUNS[folder]
    L = ["", f"## Trained: {heading}", "", about, "",
         "| run | rungs (val PSNR) | status | gain (dB) | val rFID | training s | CPU |",
         "|---|---|---|---|---|---|---|"]
    L += [f"| {r['run']} | {', '.join(f'{b}: {p:.2f}' for b, p in zip(r['budgets'], r['val_psnr']))} | "
          f"{r['status']} | {fmt(r['last_gain'], 2, True)} | {fmt(r['val_rfid'], 1)} | {fmt(r['train_seconds'], 0)} | "
          f"{', '.join(r['cpu']) or '–'} |" for r in side["rows"]]
    # seed means only where both arms have a run to compare (record5_past_plateau holds a baseline alone)
    if (t := side["tables"]) and any(r["textok"] is not None and r["baseline"] is not None for r in t["table1"]):
        where = "each run at its final rung" if t["steps"] == "final" else f"at {t['steps']:,} steps"
        L += ["", f"The side runs' seed means (val), {where}:", "", *first.table1_lines(t["table1"])]
        if len({r["num_tokens"] for r in t["table1"]}) > 1:  # compression needs a baseline at another N
            L += ["", *first.compression_lines(t["compression"])]
        if t.get("cross"):
            L += ["", "TexTok at N against the baseline at a larger N' (val PSNR, seed means; p: Welch over seeds):",
                  "", "| TexTok N | baseline N' | seeds | TexTok | baseline | difference (dB) | p |",
                  "|---|---|---|---|---|---|---|"]
            L += [f"| {c['textok_n']} | {c['baseline_n']} | {c['seeds'][0]} vs {c['seeds'][1]} | "
                  f"{pm(c['textok'], c['textok_std'], 2)} | {pm(c['baseline'], c['baseline_std'], 2)} | "
                  f"{fmt(c['difference'], 2, True)} | {fmt_p(c['p'])} |" for c in t["cross"]]
    return L


def curves(runs: dict[str, dict]) -> list[dict]:
    """Val PSNR at every rung of both arms' runs (every seed) at CURVE_N."""
    return [{"run": name, "arm": r["arm"], "num_tokens": r["num_tokens"], "seed": r["seed"],
             "steps": sorted(int(b) for b in r["budgets"]),
             "val_psnr": [r["budgets"][b]["val"]["psnr"] for b in sorted(r["budgets"], key=int)]}
            for name, r in sorted(runs.items()) if r.get("group") in ("main", "seeds") and r["num_tokens"] in CURVE_N
            and r.get("budgets")]


def split_overlap(data: str | Path, scored: int | None = None) -> dict | None:
    """How many images of each evaluation split share their full caption, or their scene
    (``textok.data.scenes.scene_key``: identical pixels), with a training image of ``data``: over the whole split
    and over the ``scored`` evenly spaced images the runs are scored on (``textok.data.stream.spread``, in file
    order). None when ``data`` has no captions.jsonl."""
    from textok.data.scenes import scene_key
    from textok.data.stream import spread

    path = Path(data) / "captions.jsonl"
    if not path.is_file():
        return None
    entries = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    train = [e for e in entries if e["split"] == "train"]
    captions, keys = {e["caption"] for e in train}, {scene_key(e) for e in train}
    out = {"data": str(data), "train_images": len(train), "scored_per_split": scored, "splits": {}}
    for split in study.SPLITS:
        es = sorted((e for e in entries if e["split"] == split), key=lambda e: e["file"])
        sub = [es[i] for i in spread(len(es), scored)]
        out["splits"][split] = {
            "images": len(es), "same_caption": sum(e["caption"] in captions for e in es),
            "same_scene": sum(scene_key(e) in keys for e in es), "scored": len(sub),
            "scored_same_caption": sum(e["caption"] in captions for e in sub),
            "scored_same_scene": sum(scene_key(e) in keys for e in sub)}
    return out


def provenance(budgets: list[dict]) -> str:
    """The machines, threads and commits behind ``budgets`` (score-file budgets), for the line under a figure."""
    if not budgets:
        return "Machine and commit: none yet (nothing scored)."
    cpus = sorted({f"{b.get('cpu')}, {b.get('threads')} thread(s)" for b in budgets})
    commits = sorted({(b.get("commit") or "unknown")[:7] + ("+dirty" if "dirty" in (b.get("commit") or "") else "")
                      for b in budgets})
    return f"Machine: {'; '.join(cpus)}. Commit(s): {', '.join(f'`{c}`' for c in commits)}."


def plot_curves(rows: list[dict], path: Path) -> bool:
    """Val PSNR against training steps (log scale), both arms at CURVE_N, one line per seed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    if not rows:
        return False
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    colours, styles, labelled = {"textok": "tab:blue", "baseline": "tab:orange"}, {1: "o-", 8: "s--"}, set()
    for r in rows:
        key = (r["arm"], r["num_tokens"])
        ax.plot(r["steps"], r["val_psnr"], styles.get(r["num_tokens"], "^:"), color=colours[r["arm"]], alpha=0.8,
                label=None if key in labelled else f"{'TexTok' if r['arm'] == 'textok' else 'baseline'}, N = {key[1]}")
        labelled.add(key)
    ax.set(xscale="log", xlabel="training steps", ylabel="val PSNR (dB)",
           title="learning curves (one line per seed)")
    ax.set_xticks(sorted({s for r in rows for s in r["steps"]}), [str(s) for s in sorted({s for r in rows
                                                                                          for s in r["steps"]})])
    ax.minorticks_off()
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def summarize(runs: dict[str, dict], max_steps: int, data: str | Path, swaps: dict | None) -> dict:
    """Everything the trained section shows (trained/summary.json), from the score files."""
    status = statuses(runs, max_steps)
    final = at_final(runs, status)
    t1 = first.table1(final, "final")
    finals = [r["budgets"]["final"] for r in final.values()]
    scored = next((b.get("eval_num") for b in finals), None) or study.EVAL_NUM
    return {"phase": "trained", "plateau_db": study.PLATEAU_DB, "ladder_start": study.LADDER_START,
            "max_steps": max_steps, "setting": setting(finals), "plateau": plateau_rows(runs, status),
            "table1": t1, "table1_provenance": provenance(finals), "compression": first.compression(t1),
            "placement": placement(final), "curves": curves(runs),
            "curves_provenance": provenance([b for name, r in runs.items() for b in r["budgets"].values()
                                             if r.get("group") in ("main", "seeds") and r["num_tokens"] in CURVE_N]),
            "split_overlap": split_overlap(data, scored), "swaps": swaps, "runs_scored": sorted(runs),
            "runs_final": sorted(final)}


def setting(finals: list[dict]) -> dict:
    """The recipe and scoring the final rungs share, read from a score file."""
    if not finals:
        return {}
    b = finals[0]
    cfg = b["effective_config"]
    return {"train_scenes": ((b.get("data") or {}).get("recipe") or {}).get("count"),
            "batch_size": cfg["optim"]["batch_size"], "optimizer": cfg["optim"].get("optimizer"),
            "eval_num": b.get("eval_num"),
            # every CPU the final rungs ran on (runs of one N pair share one; a later N may have run elsewhere)
            "cpu": join_and(list(dict.fromkeys(str(f.get("cpu")) for f in finals)))}


def findings(summary: dict) -> list[str]:
    """The trained section's findings, every number read from its tables."""
    rows, t1 = summary["plateau"], summary["table1"]
    out = first.findings(t1, [], [], [], [], None) if t1 else ["No run has reached its final rung yet."]
    count = {s: [r for r in rows if r["status"] == s] for s in ("plateau", "cap", "training", "not started")}
    caps = sorted({r["max_steps"] for r in count["cap"]})
    out.append(f"Plateau rule (val PSNR gain < {summary['plateau_db']} dB per doubling): {len(count['plateau'])} of "
               f"{len(rows)} runs at their plateau, {len(count['cap'])} stopped by the cap"
               + (f" ({', '.join(map(str, caps))} steps)" if caps else "")
               + f", {len(count['training'])} still climbing, {len(count['not started'])} not started.")
    for n in PLACEMENT_N:
        both, *others = [r for r in summary["placement"] if r["num_tokens"] == n]
        others = [r for r in others if r["seeds"]]
        if both["seeds"] and others:
            out.append(f"Where the text goes, N = {n} (val PSNR at the final rung, seed means; difference from text "
                       f"in both, Welch p): both {fmt(both['val_psnr'])} dB ({both['seeds']} seeds); " + "; ".join(
                           f"{r['text']} {fmt(r['val_psnr'])} dB ({fmt(r['val_psnr_vs_both'], 2, True)}, "
                           f"p = {fmt_p(r['p_vs_both'])}, {r['seeds']} seeds)" for r in others) + ".")
    if summary["swaps"]:
        out.append("Swaps at the final rung (decoded images that follow a changed caption, the range over seeds): "
                   + "; ".join(swap_ranges(summary["swaps"])) + ".")
    ov = summary["split_overlap"]
    if ov:
        out.append("Evaluation images that share their caption with a training image: " + ", ".join(
            f"{s['same_caption']} of {s['images']} {split} ({s['scored_same_caption']} of the {s['scored']} scored)"
            for split, s in ov["splits"].items()) + "; sharing the scene itself: " + ", ".join(
            f"{s['same_scene']} ({split})" for split, s in ov["splits"].items()) + ".")
    return out


def swap_ranges(swaps: dict) -> list[str]:
    """Per arm and N, each swapped factor's followed rate over that group's tokenizers: "74-84%" (or "100%")."""
    groups: dict[tuple, list[dict]] = {}
    for r in swaps["runs"].values():
        groups.setdefault((r["arm"] != "textok", r["num_tokens"]), []).append(r["rates"])
    out = []
    for (is_baseline, n), rates in sorted(groups.items()):
        spans = []
        for f in swaps["factors"]:
            lo, hi = (round(100 * g(r[f]["followed"] for r in rates)) for g in (min, max))
            spans.append(f"{f} {lo}%" if lo == hi else f"{f} {lo}-{hi}%")
        out.append(f"{'baseline' if is_baseline else 'TexTok'} N = {n} ({len(rates)} tokenizer(s)): "
                   + ", ".join(spans))
    return out


def verdict(summary: dict) -> str | None:
    """The trained phase's verdict, every number read from the summary: per N with both arms at their final rung,
    reconstruction on new scenes and on held-out colour-shape pairs, the compression it buys, and (where DiTs are
    scored) text-to-image adherence and gFID at equal N (many-step sampler, the config's guidance)."""
    t1 = {(r["num_tokens"], r["split"], r["metric"]): r for r in summary["table1"]}
    comp = {r["num_tokens"]: r for r in summary["compression"]}
    gen = first.headline_generation_rows(summary.get("generation"))
    parts = []
    for n in sorted({k[0] for k in t1}):
        v, c = t1.get((n, "val", "psnr")), t1.get((n, "val_compositional", "psnr"))
        if not v or v["textok"] is None or v["baseline"] is None:
            continue
        seeds = f"{v['seeds'][0]} vs {v['seeds'][1]} seeds"
        text = (f"at N = {n} ({seeds}), TexTok reconstructs new scenes at {fmt(v['textok'])} dB PSNR against the "
                f"baseline's {fmt(v['baseline'])} (p = {fmt_p(v['p'])})")
        if c and c["textok"] is not None and c["baseline"] is not None:
            text += f" and held-out colour-shape pairs at {fmt(c['textok'])} against {fmt(c['baseline'])}"
        k = comp.get(n, {})
        if k.get("psnr_baseline_n") and k["psnr_baseline_n"] > n:  # a compression only against a larger baseline N
            text += (f"; it matches the baseline at N' = {k['psnr_baseline_n']} tokens"
                     + (" or more (the largest scored)" if k["psnr_at_least"] else "")
                     + f" ({'≥ ' if k['psnr_at_least'] else ''}{k['psnr_factor']:g}x compression)")
        for split, label in (("val", "captions of new scenes"), ("val_compositional", "held-out-pair captions")):
            g = gen.get((n, split))
            if not g or set(g["arms"]) != {"textok", "baseline"}:
                continue
            a = g["arms"]
            pct = lambda arm: f"{100 * a[arm]['images']['exact'][0]:.1f}%"  # noqa: E731
            gf = lambda arm: fmt(a[arm]["gfid"][0], 1)  # noqa: E731
            text += (f"; text-to-image from {label} ({min(a['textok']['dit_seeds'], a['baseline']['dit_seeds'])} DiT "
                     f"seed(s) per arm, {g['sampler']} {g['steps']}): the whole scene right in {pct('textok')} of "
                     f"TexTok's samples against {pct('baseline')} (p = {fmt_p(g['welch_p']['exact'])}), gFID "
                     f"{gf('textok')} against {gf('baseline')} (p = {fmt_p(g['welch_p']['gfid'])})")
        parts.append(text)
    if not parts:
        return None
    return "**Verdict:** " + "; ".join(parts) + "."


def render(summary: dict, plotted: bool, out_rel: str, generation: list[str]) -> str:
    """The trained section's Markdown (``out_rel``: the folder of curves.png and swaps.png, relative to the page;
    ``generation``: the text-to-image section's lines, heading included, from ``studies.scenes.t2i``)."""
    rows, st = summary["plateau"], summary["setting"]
    L = ["# Scenes, trained tokenizers (issue 44)", "",
         f"Generated by `studies/scenes/report.py` from `docs/results/scenes/trained/runs/*.json` "
         f"({len(summary['runs_final'])} of {len(rows)} runs at their final rung, {len(summary['runs_scored'])} "
         f"scored). Each run climbs budgets of {summary['ladder_start']} x 2^k steps, scored at every rung, until "
         f"its val PSNR gains less than {summary['plateau_db']} dB over the last doubling (plateau; a drop right after "
         f"a gain of at least that is a dip, and the run climbs one more rung) or the next rung "
         f"would pass the cap ({summary['max_steps']} steps unless its score file records another; the driver's "
         f"default is about {study.CAP_SECONDS / 3600:g} h of training at the slower arm's s/step); it is reported at "
         "that rung, rFID "
         "there only. Design and commands: [studies/scenes/README.md](../../studies/scenes/README.md).", ""]
    if st:
        L += [f"Setting: `configs/{PHASE.config.name}` ({st['optimizer']}), {st['train_scenes']} training scenes, "
              f"batch {st['batch_size']}, {st['eval_num'] or 'every'} evenly spaced images scored per split, "
              f"{st['cpu']}.", ""]
    v = verdict(summary)
    L += ([v, ""] if v else []) + ["## Trained: findings", ""] + [f"- {f}" for f in findings(summary)]
    L += ["", "## Trained: plateau status per run", "",
          "Rungs scored with their val PSNR; gain: over the last doubling; seconds: training to the newest rung.", "",
          "| run | rungs (val PSNR) | status | gain (dB) | training s | threads | CPU |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        rungs = ", ".join(f"{b}: {p:.2f}" for b, p in zip(r["budgets"], r["val_psnr"])) or "–"
        state = (f"{r['status']} at {r['final']}" if r["final"] is not None else
                 f"not started (next {r['next']})" if r["status"] == "not started" else f"climbing (next {r['next']})")
        state += f", no rFID on {', '.join(r['missing_rfid'])}" if r["missing_rfid"] else ""
        L.append(f"| {r['run']} | {rungs} | {state} | {fmt(r['last_gain'], 2, True)} | "
                 f"{fmt(r['train_seconds'], 0)} | {', '.join(map(str, r['threads'])) or '–'} | "
                 f"{', '.join(r['cpu']) or '–'} |")
    pending = [r["run"] for r in rows if r["pending"]]
    if pending:
        L += ["", f"Pending ({len(pending)} runs; the driver resumes each from its last checkpoint and skips what is "
                  f"scored): `{RESUME} {' '.join(pending)}`"]
    L += ["", "## Trained: Table 1, TexTok vs the no-text baseline (each run at its final rung)", "",
          *(first.table1_lines(summary["table1"]) if summary["table1"] else
            ["Pending: no run at its final rung yet (the plateau status above)."]), "", summary["table1_provenance"],
          "", "## Trained: compression, fewer tokens for the same quality (val)", "",
          *(first.compression_lines(summary["compression"]) if summary["compression"] else ["Pending: Table 1."])]
    L += ["", f"## Trained: learning curves at N = {' and '.join(map(str, CURVE_N))}", ""]
    L += ([f"![learning curves]({out_rel}/curves.png)", ""] if plotted else ["Pending: no rung scored yet.", ""])
    L.append(summary["curves_provenance"])
    for folder, side in summary.get("side_runs", {}).items():
        if side["rows"]:
            L += side_lines(folder, side)
    L += ["", "## Trained: where the text goes (the paper's ablation)", "",
          f"TexTok with the text in the encoder and decoder (in-context tokens, the main runs), the encoder only, the "
          f"decoder only, none (the baseline), and cross-attention instead of in-context tokens; seeds "
          f"{', '.join(map(str, study.PLACEMENT_SEEDS))} in every row, each run at its final rung. Difference: val "
          "PSNR against text in both (Welch p over seeds).", "",
          "| N | text | seeds | steps | val PSNR | val rFID | compositional PSNR | compositional rFID | vs both (dB) "
          "| p |",
          "|---|---|---|---|---|---|---|---|---|---|"]
    for r in summary["placement"]:
        L.append(f"| {r['num_tokens']} | {r['text']} | {r['seeds']} | {', '.join(map(str, r['steps'])) or '–'} | "
                 f"{pm(r['val_psnr'], r['val_psnr_std'])} | {pm(r['val_rfid'], r['val_rfid_std'], 1)} | "
                 f"{pm(r['val_compositional_psnr'], r['val_compositional_psnr_std'])} | "
                 f"{pm(r['val_compositional_rfid'], r['val_compositional_rfid_std'], 1)} | "
                 f"{fmt(r['val_psnr_vs_both'], 2, True)} | {fmt_p(r['p_vs_both'])} |")
    L += ["", summary["table1_provenance"], "", "## Trained: evaluation splits against the training set", ""]
    ov = summary["split_overlap"]
    if ov:
        L += [f"Images of each split whose full caption, or whose scene (`textok.data.scenes.scene_key`: identical "
              f"pixels), is also a training image's, in `{ov['data']}` ({ov['train_images']} training images); "
              f"scored: the {ov['scored_per_split']} evenly spaced images the runs are scored on.", "",
              "| split | images | same caption | same scene | scored | scored, same caption | scored, same scene |",
              "|---|---|---|---|---|---|---|"]
        L += [f"| {split} | {s['images']} | {s['same_caption']} | {s['same_scene']} | {s['scored']} | "
              f"{s['scored_same_caption']} | {s['scored_same_scene']} |" for split, s in ov["splits"].items()]
    else:
        L.append(f"Pending: no captions.jsonl in the data set (`textok data fetch scenes --root {PHASE.data} "
                 f"{PHASE.fetch_args}`).")
    sw = summary["swaps"]
    L += ["", "## Trained: what the caption controls, swaps at the final rung", "",
          *first.swaps_lines(sw, out_rel, "python -m studies.scenes.swaps --phase trained")]
    if sw:
        L += ["", provenance([{k: r.get(k) or sw.get(k) for k in ("cpu", "threads", "commit")}
                              for r in sw["runs"].values()])]
    L += [""] + generation
    return "\n".join(L) + "\n"


def build(results: Path, out: Path, data: str | Path, page_dir: Path, max_steps: int | None = None) -> tuple[str, dict]:
    """The trained section's Markdown and summary from the score files in ``results``; writes ``out``/curves.png
    and ``out``/summary.json (reads ``out``/swaps.json). ``max_steps``: the cap of runs whose score file records
    none (default: the driver's, ``run.default_max_steps``)."""
    from textok.io import write_json_atomic

    runs = {name: r for name, r in first.load_runs(results).items() if r.get("budgets")}
    cap = max_steps or study.default_max_steps(results, PHASE)
    swaps_file = out / "swaps.json"
    summary = summarize(runs, cap, data, json.loads(swaps_file.read_text()) if swaps_file.is_file() else None)
    plotted = plot_curves(summary["curves"], out / "curves.png")
    try:
        out_rel = out.resolve().relative_to(page_dir.resolve()).as_posix()
    except ValueError:
        out_rel = out.resolve().as_posix()
    from .t2i import generation_section, generation_summary

    # its own heading and lines, from out/t2i (studies/scenes/t2i.py's RESULTS under the default out)
    generation = generation_section(out / "t2i", relative_to=page_dir).rstrip("\n").split("\n")
    summary["generation"] = generation_summary(out / "t2i")
    summary["side_runs"] = {}
    for folder, (_, _, compare) in SIDE_RUNS.items():
        side = side_runs(out / folder)
        status = statuses(side, cap)
        summary["side_runs"][folder] = {"rows": side_rows(side, status),
                                        "tables": side_tables(side, compare, status)}
    write_json_atomic(out / "summary.json", summary)
    return render(summary, plotted, out_rel, generation), summary
