"""The reproduction study's figures: rFID against N, the learning curves, the convergence plot and, with the
stage models at hand (``--grids``), the reconstruction grids and the per-category PSNR."""

from __future__ import annotations

import json
from pathlib import Path

from ..stats import split_label
from .reproduction import REPO, REPORT_SPLITS, SPLITS, stage_dir, study_runs
from .report_tables import TOKENS, main_rows, one, pick


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
        ax.set_title(f"emoji 32 px, {split_label(split).replace('`', '')}")
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
