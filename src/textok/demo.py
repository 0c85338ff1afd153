"""``textok demo``: the shipped pair of tokenizers, re-scored, drawn, then a short training run.

A short program over the public API:

1. find the pair shipped as package data (``textok.pretrained.find_pair``: a TexTok and
   its no-text baseline at the same token count N) and fetch the emoji data if it is missing;
2. score both on each split with ``textok.metrics.evaluate_tokenizer`` (PSNR, SSIM, LPIPS;
   rFID with ``rfid=True`` on ``rfid_splits``, there on ``rfid_limit`` evenly spaced images),
   new emoji first. The originals' Inception features are read from
   ``<name>-<split>-inception.npz`` beside the pair when they hold exactly these images (or the
   whole split, then the same evenly spaced subset is taken): an Inception pass over 652 images
   takes ~4 min on a 2-core CPU;
3. draw ``reconstructions.png`` (original | baseline | TexTok) and ``caption_swap.png`` (... |
   TexTok decoding the same tokens with another image's caption);
4. train TexTok from scratch for ``train_steps`` steps of the recipe the pair names in its
   ``SOURCE.json``, printing the loss, and score it on the first split;
5. write ``results.md`` and ``results.json``.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Sequence

import torch

from . import pretrained as shipped
from .io import atomic_path, write_json_atomic, write_text_atomic
from .pretrained import find_pair, read_source, split_label

#: the emoji data set's evaluation splits, the new-emoji split first (``textok.pretrained.split_label`` says what
#: each measures: nearly every ``val`` image re-renders a training emoji under its caption)
SPLITS = ("val_unseen", "val")
MODELS = {"baseline": "baseline", "textok": "TexTok"}
# 100 steps take ~2.5 min on an idle 2-core AMD EPYC (captions embedded per batch): enough to watch the
# loss fall, and with rFID on RFID_LIMIT images the demo stays under ten minutes there
# (docs/results/throughput.md, "Demo wall time")
DEFAULT_TRAIN_STEPS = 100
#: images (evenly spaced) of each rFID split: both arms' Inception passes over the 652 new emoji took
#: 532 s of a 14-minute demo on that machine; the study's tables hold the full-split rFID
RFID_LIMIT = 300


def ensure_data(root: str | Path) -> Path:
    root = Path(root)
    if not (root / "captions.jsonl").is_file():
        from .data import fetch

        print(f"fetching the emoji data set into {root} (npm registry) ...", flush=True)
        fetch("emoji", root)
    return root


def shipped_reference(pair: dict, root: Path, split: str, image_size: int, limit: int | None, extractor):
    """The originals' Inception features shipped beside the pair, or None when absent or not of
    exactly these images from this network (then ``evaluate_tokenizer`` computes them)."""
    from .metrics import check_reference, image_fingerprint, load_stats, reference_subset

    name = pair["textok"].name.split("-textok-")[0]
    path = pair["textok"].parent / f"{name}-{split}-inception.npz"
    if not path.is_file():
        return None
    try:
        stats = load_stats(path)
        n = stats.num if limit is None else min(limit, stats.num or limit)
        if stats.features is not None and stats.num and n < stats.num:  # the rows of the n images scored
            stats = reference_subset(stats, root, split, image_size, n, extractor, str(path))
        else:
            check_reference(stats, n, image_fingerprint(root, split, image_size, limit), extractor, str(path))
    except ValueError as e:
        print(f"   not using the shipped Inception features: {e}", flush=True)
        return None
    print(f"   the originals' Inception features: {path} (same images and network, {n} of them)", flush=True)
    return stats


def split_limit(split: str, limit: int | None, rfid_splits: Sequence[str], rfid_limit: int | None) -> int | None:
    """Images scored on ``split``: ``limit``, and at most ``rfid_limit`` where rFID is computed."""
    if split not in rfid_splits or not rfid_limit:
        return limit
    return rfid_limit if limit is None else min(limit, rfid_limit)


def rescore(models: dict, pair: dict, root: Path, limit: int | None, rfid_splits: Sequence[str],
            progress: bool = True, rfid_limit: int | None = None) -> dict:
    """{split: {model: scores}}, each split scored by ``evaluate_tokenizer`` (on ``split_limit`` images)."""
    from .metrics import InceptionFeatures, evaluate_tokenizer

    extractor = InceptionFeatures() if rfid_splits else None
    size = models["textok"].config.image_size
    results = {}
    for split in SPLITS:
        rfid = split in rfid_splits
        limit_here = split_limit(split, limit, rfid_splits, rfid_limit)
        print(f"== scoring on {split_label(split)}: PSNR, SSIM, LPIPS{' and rFID' if rfid else ''} ...", flush=True)
        reference = shipped_reference(pair, root, split, size, limit_here, extractor) if rfid else None
        report = evaluate_tokenizer(list(models.values()), str(root), num=limit_here, split=split, names=list(models),
                                    rfid=rfid, extractor=extractor, reference=reference, grid_images=0,
                                    progress=progress)
        results[split] = {r["name"]: {k: r[k] for k in ("psnr", "ssim", "lpips", "num")}
                          | ({"rfid": r["rfid"]} if rfid else {}) for r in report["results"]}
    return results


def write_grid(path: Path, images: torch.Tensor, columns: dict[str, torch.Tensor], captions: Sequence[str],
               scale: int = 2, min_width: int = 420) -> None:
    """Rows of [original | one column per entry] with the caption (lines split on ``\\n``) under each row."""
    from PIL import Image, ImageDraw, ImageFont

    from .data.transforms import to_pil

    S, pad, line_h, head = images.shape[-1] * scale, 6, 12, 18
    W = max(pad + (len(columns) + 1) * (S + pad), min_width)
    width = max(20, (W - 2 * pad) // 6)
    lines = [[s if len(s) <= width else s[: width - 3] + "..." for s in str(c).split("\n")] for c in captions]
    row_h = S + line_h * max((len(ls) for ls in lines), default=1) + 4 + pad
    canvas = Image.new("RGB", (W, head + len(images) * row_h + pad), "white")
    draw, font = ImageDraw.Draw(canvas), ImageFont.load_default()
    for j, name in enumerate(["original", *columns]):
        draw.text((pad + j * (S + pad), 3), name, fill="black", font=font)
    for i in range(len(images)):
        y = head + i * row_h
        for j, t in enumerate([images[i], *[c[i] for c in columns.values()]]):
            canvas.paste(to_pil(t).resize((S, S), Image.NEAREST), (pad + j * (S + pad), y))
        for k, line in enumerate(lines[i]):
            draw.text((pad, y + S + 2 + k * line_h), line, fill=(40, 40, 40), font=font)
    with atomic_path(path) as tmp:
        canvas.save(tmp, format="PNG")


@torch.no_grad()
def draw(out: Path, models: dict, root: Path, split: str, rows: int) -> list[dict]:
    """``reconstructions.png`` and ``caption_swap.png`` on ``rows`` images of ``split``: of ``2 * rows`` evenly
    spaced ones, those with a caption not seen above first (a split may hold the same emoji in two styles).
    Each row's swapped-in caption is the first other caption from half the grid away, the empty one if every
    row has the same caption."""
    from .data import open_dataset
    from .metrics import iterate_batches, psnr

    t, b = models["textok"], models["baseline"]
    batch = next(iterate_batches(open_dataset(str(root), split=split, image_size=t.config.image_size, train=False),
                                 2 * rows, 2 * rows))
    first = {c: i for i, c in reversed(list(enumerate(batch["captions"])))}  # caption -> its first row
    keep = sorted(first.values())
    keep = (keep + [i for i in range(len(batch["captions"])) if i not in first.values()])[:rows]
    images, captions = batch["images"][keep], [batch["captions"][i] for i in keep]
    n = len(captions)
    others = [next((c for k in range(n) if (c := captions[(i + n // 2 + k) % n]) != captions[i]), "")
              for i in range(n)]
    cols = {"baseline": b.reconstruct(images), "TexTok": t.reconstruct(images, captions),
            "TexTok, swapped": t.reconstruct(images, captions, decode_captions=others)}
    write_grid(out / "reconstructions.png", images, {k: cols[k] for k in ("baseline", "TexTok")}, captions)
    write_grid(out / "caption_swap.png", images, cols, [f"caption: {c}\nswapped: {o}" for c, o in zip(captions, others)],
               scale=3, min_width=480)
    return [{"caption": c, "swapped_caption": o,
             "psnr": {k: float(psnr(v[i : i + 1], images[i : i + 1])[0]) for k, v in cols.items()}}
            for i, (c, o) in enumerate(zip(captions, others))]


def short_run(cfg, out: Path, root: Path, split: str, limit: int | None, progress: bool = True) -> dict:
    """Train TexTok from scratch for ``cfg.schedule.max_steps`` steps in ``out/short_run``, printing
    the mean loss of every tenth of the run; then score its EMA model on ``split``."""
    from .metrics import evaluate_tokenizer
    from .training import TokenizerTask, Trainer

    run = out / "short_run"
    if run.exists():  # always from scratch: the point is to watch it train
        shutil.rmtree(run)
    steps, losses, curve = cfg.schedule.max_steps, [], []
    every = max(1, steps // 10)

    class LoggedTrainer(Trainer):
        def train_step(self, micro):
            logs = super().train_step(micro)
            losses.append(float(logs["loss"]))
            if len(losses) % every == 0 or len(losses) == steps:
                start = curve[-1]["step"] if curve else 0
                curve.append({"step": len(losses), "loss": sum(losses[start:]) / (len(losses) - start)})
                print(f"   step {len(losses):5d}/{steps}  loss {curve[-1]['loss']:.4f} (mean since step {start + 1})",
                      flush=True)
            return logs

    print(f"== short run: TexTok from scratch ({cfg.model.image_size} px, {cfg.model.num_tokens} tokens), {steps} "
          f"steps x {cfg.optim.batch_size} images", flush=True)
    result = LoggedTrainer(TokenizerTask(cfg), cfg, run).train()
    print(f"== scoring the short run on {split_label(split)} ...", flush=True)
    r = evaluate_tokenizer(run / "model", str(root), num=limit, split=split, rfid=False, grid_images=0,
                           progress=progress)["results"][0]
    return {"steps": result.step, "batch_size": cfg.optim.batch_size, "train_seconds": round(result.seconds, 1),
            "loss_curve": curve, "loss_first": curve[0]["loss"] if curve else None,
            "loss_last": curve[-1]["loss"] if curve else None, "split": split,
            "scores": {k: r[k] for k in ("psnr", "ssim", "lpips", "num")}}


def markdown(results: dict, meta: dict, short: dict | None) -> str:
    rfid = any("rfid" in r for rows in results.values() for r in rows.values())
    src = meta["source"]
    folders = ", ".join(f"`{meta['folders'][k]}`" + (f" ({src[k]['steps']} steps)" if src[k].get("steps") else "")
                        for k in MODELS)
    lines = [f"TexTok and its no-text baseline at N = {meta['tokens']} tokens, {meta['image_size']} px ({folders}), "
             "re-scored with `textok.metrics.evaluate_tokenizer`. One checkpoint per arm: a difference below is "
             "one sample, not a measured effect; the pair's README says where it came from."
             + (f" rFID on {meta['rfid_limit']} evenly spaced images of a split (`--rfid-limit`); the study's "
                "tables hold the whole splits." if rfid and meta.get("rfid_limit") else ""), "",
             "| split | model | PSNR (dB) ↑ | SSIM ↑ | LPIPS ↓ |" + (" rFID ↓ |" if rfid else ""),
             "|---|---|---:|---:|---:|" + ("---:|" if rfid else "")]
    for split, rows in results.items():
        for name, label in MODELS.items():
            r = rows[name]
            lines.append(f"| {split_label(split)}, {r['num']} images | {label} | {r['psnr']:.2f} | {r['ssim']:.4f} | "
                         f"{r['lpips']:.4f} |" + ((f" {r['rfid']:.2f} |" if "rfid" in r else " – |") if rfid else ""))
    if short:
        s, curve = short["scores"], ", ".join(f"{c['loss']:.4f}" for c in short["loss_curve"])
        lines += ["", f"Short run: TexTok from scratch, {short['steps']} steps x {short['batch_size']} images "
                      f"({short['train_seconds']:.0f} s); mean loss per tenth of the run: {curve}; on "
                      f"{split_label(short['split'])}: "
                      f"PSNR {s['psnr']:.2f} dB, SSIM {s['ssim']:.4f}, LPIPS {s['lpips']:.4f} ({s['num']} images)."]
    return "\n".join(lines) + "\n"


def demo(out: str | Path = "demo_out", config: str | Path | None = None, overrides: Sequence[str] = (),
         eval_limit: int | None = None, grid_rows: int = 8, rfid: bool = False, threads: int | None = None,
         train_steps: int = DEFAULT_TRAIN_STEPS, pretrained: str | Path | None = None,
         rfid_splits: Sequence[str] = ("val_unseen",), progress: bool = True,
         rfid_limit: int | None = RFID_LIMIT) -> dict:
    """Run the demo on the pair shipped under ``pretrained`` (default: the package's); returns
    what it writes to ``out/results.json``. ``config``: the short run's recipe (default: the one
    the shipped TexTok's ``SOURCE.json`` names); ``overrides`` apply to it. ``eval_limit``: images
    (evenly spaced) scored per split, all if None; ``rfid_limit``: at most this many on a split
    scored with rFID (None or 0: ``eval_limit``)."""
    from .tokenizer import CaptionedTokenizer
    from .training import load_config

    unknown = sorted(set(rfid_splits) - set(SPLITS))
    if unknown:
        raise ValueError(f"rfid_splits: unknown split(s) {unknown}; the demo scores {list(SPLITS)}")
    if train_steps < 0:
        raise ValueError(f"--train-steps must be >= 0, got {train_steps}")
    if rfid_limit is not None and rfid_limit < 0 or eval_limit is not None and eval_limit < 1:
        raise ValueError(f"--eval-limit must be >= 1 and --rfid-limit >= 0, got {eval_limit} and {rfid_limit}")
    pair = find_pair(pretrained)
    if pair is None:
        raise FileNotFoundError(f"no shipped pair (<name>-textok-n<N> and <name>-baseline-n<N>) in "
                                f"{pretrained or shipped.PRETRAINED_DIR}; give --pretrained DIR")
    if threads:
        torch.set_num_threads(threads)
    t0, out = time.perf_counter(), Path(out)
    source = {k: read_source(pair[k]) for k in MODELS}
    if config is None:
        if not source["textok"].get("recipe"):
            raise ValueError(f"{pair['textok']}/SOURCE.json names no recipe: give --config")
        config = f"configs/{source['textok']['recipe']}"
    path = Path(config)
    if not path.is_file() and not path.is_absolute():  # an editable install: the repository's configs/
        path = Path(__file__).resolve().parents[2] / config
    cfg = load_config(path, [f"model.num_tokens={pair['num_tokens']}", f"schedule.max_steps={max(train_steps, 1)}",
                             "logging.progress=false", *overrides])
    root = ensure_data(cfg.data.root)
    models = {k: CaptionedTokenizer.from_pretrained(pair[k], data_root=root) for k in MODELS}
    print(f"== the shipped pair: {pair['textok'].name} and {pair['baseline'].name}", flush=True)
    rfid_splits = [s for s in SPLITS if rfid and s in rfid_splits]
    results = rescore(models, pair, root, eval_limit, rfid_splits, progress, rfid_limit)
    first = next(iter(SPLITS))
    grid = draw(out, models, root, first, grid_rows)
    # scored on the same images as the pair on that split
    short = (short_run(cfg, out, root, first, split_limit(first, eval_limit, rfid_splits, rfid_limit), progress)
             if train_steps > 0 else None)
    c = models["textok"].config
    meta = {"tokens": pair["num_tokens"], "token_dim": c.token_dim, "image_size": c.image_size,
            "folders": {k: pair[k].name for k in MODELS}, "paths": {k: str(pair[k]) for k in MODELS},
            "source": {k: {f: source[k].get(f) for f in ("run", "steps", "dtype")} for k in MODELS},
            # a list: the JSON's keys are sorted, and the order (new emoji first) is the point
            "splits": [{"split": s, "label": split_label(s)} for s in results], "eval_limit": eval_limit, "rfid": rfid_splits,
            "rfid_limit": rfid_limit if rfid_splits else None,
            "config": str(config), "overrides": list(overrides), "threads": torch.get_num_threads(),
            "total_seconds": round(time.perf_counter() - t0, 1)}
    md = markdown(results, meta, short)
    report = {"results": results, "short_run": short, "grid": grid, "meta": meta}
    write_text_atomic(out / "results.md", md)
    write_json_atomic(out / "results.json", report)
    print(f"\n{md}\nwrote {out}/reconstructions.png, caption_swap.png, results.md, results.json "
          f"({meta['total_seconds']:.0f} s)")
    return report
