"""``make demo``: TexTok vs its no-text twin on the emoji data, in one of two modes.

**Shipped pair** (``src/textok/pretrained/emoji32-textok-n<N>`` and ``emoji32-baseline-n<N>``,
written by ``studies/emoji32/ship_checkpoints.py`` from the reproduction study; found by
``textok.explore.shipped_checkpoints``):

1. fetch the emoji data set into ``data/emoji`` if missing (``textok.data.fetch``);
2. re-score both checkpoints on every image of ``val`` and ``val_unseen``: PSNR, SSIM, LPIPS
   (and rFID with ``rfid=True`` on the splits in ``rfid_splits``, by default ``val`` only,
   through ``evaluate_tokenizer`` with both checkpoints in one call per split; the originals'
   Inception features are read from ``pretrained/emoji32-<split>-inception.npz`` when it holds
   exactly these images, else computed once), reconstructions rounded to uint8 before scoring as
   ``evaluate_tokenizer`` does. rFID on one split, not two, and the shipped features keep the
   demo under ten minutes on an AVX2-only 2-core CPU, where an Inception pass over a split takes
   about two minutes;
3. write ``reconstructions.png`` (original | baseline | TexTok, caption under each row) and
   ``caption_swap.png`` (... | TexTok decoding the same tokens with another image's caption);
4. train a short run (``train_steps``, 0 skips it) of the recipe the shipped TexTok came from
   (``recipe`` in its ``SOURCE.json``, e.g. ``configs/emoji32_textok_p8.yaml``; without one
   ``configs/emoji32_textok.yaml``) at the shipped N, printing its loss, then its val PSNR next
   to the shipped TexTok's;
5. write ``results.md`` and ``results.json`` and print the table and a verdict computed from
   the numbers (single-seed differences are not a claim: see docs/results/reproduction.md).

**No shipped pair**: train the baseline (``model.text_in=none``) and TexTok from
``configs/emoji64_textok.yaml`` (identical recipe and step budget; ~10 minutes for both on an
idle 2-core CPU), reconstruct the validation emoji with each EMA model, score them the same
way (first ``eval_limit`` images), write ``reconstructions.png``, ``results.md`` and
``results.json``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import torch

from .conditioning import TextConditioner
from .config import to_dict
from .data.stream import open_split
from .io import atomic_path, write_json_atomic, write_text_atomic

if TYPE_CHECKING:
    from .metrics import Stats

log = logging.getLogger(__name__)

DEFAULT_CONFIG = "configs/emoji64_textok.yaml"  # no shipped pair: the 64 px pair trained here
SHIPPED_CONFIG = "configs/emoji32_textok.yaml"  # shipped pair whose SOURCE.json names no recipe: the short run's
# 150 steps take ~2 min on an idle AVX2-only 2-core CPU (the loss falls from ~1.05 to ~0.32): enough to
# show that training works and keep the demo near ten minutes there (docs/results/throughput.md)
DEFAULT_TRAIN_STEPS = 150
SPLITS = ("val", "val_unseen")
MODELS = ("baseline", "textok")
REPRODUCTION_PAGE = "docs/results/reproduction.md"


def _find_config(path: str | Path) -> Path:
    path = Path(path)
    if path.is_file() or path.is_absolute():
        return path
    beside_repo = Path(__file__).resolve().parents[2] / path  # editable install: the repo's configs/
    return beside_repo if beside_repo.is_file() else path


def ensure_emoji(root: str | Path) -> Path:
    root = Path(root)
    if not (root / "captions.jsonl").is_file():
        from .data import fetch

        print(f"fetching the emoji data set into {root} (npm registry) ...", flush=True)
        fetch("emoji", root)
    return root


def train_pair(cfg, out: Path) -> dict[str, Path]:
    """Train the baseline and TexTok with the same recipe; a finished run in ``out`` is reused."""
    from .training import TokenizerTask, Trainer, baseline_of
    from .training.checkpoint import latest_checkpoint, read_trainer_state

    runs = {}
    for name, c in (("baseline", baseline_of(cfg)), ("textok", cfg)):
        run = out / name
        latest = latest_checkpoint(run / "checkpoints")
        resume = False
        if latest is not None:
            state = read_trainer_state(latest)
            resume = state["config"] == to_dict(c)
            if not resume:  # an older demo with another recipe: start over
                import shutil

                shutil.rmtree(run)
        print(f"== training {name} (text_in={c.model.text_in}) for {c.schedule.max_steps} steps "
              f"of {c.optim.batch_size} images", flush=True)
        Trainer(TokenizerTask(c), c, run, resume=resume).train()
        runs[name] = run / "model"
    return runs


@torch.no_grad()
def reconstruct_split(models: dict, root: Path, split: str, limit: int | None, batch_size: int = 64,
                      progress: bool = True):
    """-> originals [N,3,S,S], {name: reconstructions}, captions for the first ``limit`` images."""
    from tqdm.auto import tqdm

    first = next(iter(models.values())).config
    ds = open_split(str(root), split, first.image_size, False, False, 0, "skip")
    n = len(ds) if limit is None else min(limit, len(ds))
    items = [it for it in (ds[i] for i in range(n)) if it is not None]  # bad images are skipped
    n = len(items)
    images = torch.stack([it["image"] for it in items])
    captions = [it["caption"] for it in items]
    text = TextConditioner(first.text_encoder, first.max_text_tokens, str(root), use_cache=True)
    recs = {}
    for name, model in models.items():
        chunks = []
        with tqdm(total=n, desc=f"{split} reconstruct {name}", unit="img", disable=not progress, leave=False) as bar:
            for i in range(0, n, batch_size):
                x = images[i : i + batch_size]
                t = text(captions[i : i + batch_size]) if model.config.text_in != "none" else None
                chunks.append(model.decode(model.encode(x, t), t).clamp(-1, 1))
                bar.update(len(x))
        recs[name] = torch.cat(chunks)
    return images, recs, captions


@torch.no_grad()
def score(images: torch.Tensor, recs: dict[str, torch.Tensor], rfid: bool, progress: bool = True,
          split: str = "") -> dict[str, dict[str, float]]:
    """PSNR, SSIM, LPIPS (and rFID) of each model's reconstructions, with progress bars."""
    from tqdm.auto import tqdm

    from .losses import LPIPS
    from .metrics import psnr, ssim

    lpips = LPIPS().eval()
    feats = None
    if rfid:
        from .metrics import InceptionFeatures, fid_from_features

        inception = InceptionFeatures()

        def feats(x, who):  # float64 [N, 2048]
            return inception.extract([x[i : i + 50] for i in range(0, len(x), 50)], total=len(x), progress=progress,
                                     desc=f"{split} inception {who}")

        real = feats(images, "originals")
    out = {}
    for name, rec in recs.items():
        d = []
        with tqdm(total=len(images), desc=f"{split} LPIPS {name}", unit="img", disable=not progress, leave=False) as bar:
            for i in range(0, len(images), 64):
                d.append(lpips(rec[i : i + 64], images[i : i + 64]))
                bar.update(len(d[-1]))
        row = {"psnr": float(psnr(rec, images).mean()), "ssim": float(ssim(rec, images).mean()),
               "lpips": float(torch.cat(d).mean())}
        if feats is not None:
            rec_feats = feats(rec, name)
            if progress:
                print(f"   {split}: rFID of {name} ...", flush=True)
            row["rfid"] = float(fid_from_features(real, rec_feats))
        out[name] = row
    return out


LABELS = {"textok": "TexTok", "swapped": "TexTok, swapped"}


def write_grid(path: Path, images: torch.Tensor, recs: dict[str, torch.Tensor], captions: Sequence[str],
               scale: int = 2, min_width: int = 420) -> None:
    """Rows of [original | one column per entry of ``recs``] with the caption under each row
    (a caption may hold several lines, ``\\n``-separated; long lines are cut to the width)."""
    from PIL import Image, ImageDraw, ImageFont

    from .data.transforms import to_pil

    S = images.shape[-1] * scale
    pad, line_h, head = 6, 12, 18
    cols = ["original", *recs]
    W = max(pad + len(cols) * (S + pad), min_width)
    max_chars = max(20, (W - 2 * pad) // 6)
    lines = [[ln if len(ln) <= max_chars else ln[: max_chars - 3] + "..." for ln in str(c).split("\n")]
             for c in captions]
    text_h = line_h * max((len(ls) for ls in lines), default=1) + 4
    row_h = S + text_h + pad
    canvas = Image.new("RGB", (W, head + len(images) * row_h + pad), "white")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    for j, name in enumerate(cols):
        draw.text((pad + j * (S + pad), 3), LABELS.get(name, name), fill="black", font=font)
    for i in range(len(images)):
        y = head + i * row_h
        tiles = [images[i], *[r[i] for r in recs.values()]]
        for j, t in enumerate(tiles):
            canvas.paste(to_pil(t).resize((S, S), Image.NEAREST), (pad + j * (S + pad), y))
        for k, line in enumerate(lines[i]):
            draw.text((pad, y + S + 2 + k * line_h), line, fill=(40, 40, 40), font=font)
    with atomic_path(path) as tmp:
        canvas.save(tmp, format="PNG")


def verdict(results: dict) -> list[str]:
    """Plain sentences on whether text helped, per split, and why it might not have."""
    lines = []
    helped_any = False
    for split, rows in results.items():
        b, t = rows["baseline"], rows["textok"]
        better = {"PSNR": t["psnr"] > b["psnr"], "SSIM": t["ssim"] > b["ssim"], "LPIPS": t["lpips"] < b["lpips"]}
        if "rfid" in t:
            better["rFID"] = t["rfid"] < b["rfid"]
        wins = [k for k, v in better.items() if v]
        helped_any |= len(wins) == len(better)
        gain = (b["lpips"] - t["lpips"]) / b["lpips"] * 100
        lines.append(f"- `{split}`: TexTok is better on {len(wins)}/{len(better)} metrics "
                     f"({', '.join(wins) or 'none'}); LPIPS {gain:+.1f}% relative to the baseline, "
                     f"PSNR {t['psnr'] - b['psnr']:+.2f} dB.")
    if helped_any:
        lines.append("Text helps at this budget: with the same tokens and steps, the caption lets the tokens "
                     "spend less capacity on what the emoji depicts.")
    else:
        lines.append("Text does not clearly help at this budget. Why: a ~5-minute CPU run (a few hundred steps) "
                     "mostly learns colours and coarse layout, where both models are still far from their capacity; "
                     "the paper's gains come from long runs where the tokens, not the optimisation, are the "
                     "bottleneck. The text path also adds parameters and sequence length that need steps to learn.")
    return lines


def markdown(results: dict, meta: dict) -> str:
    rfid = any("rfid" in r for rows in results.values() for r in rows.values())
    head = "| split | model | PSNR (dB) ↑ | SSIM ↑ | LPIPS ↓ |" + (" rFID ↓ |" if rfid else "")
    sep = "|---|---|---:|---:|---:|" + ("---:|" if rfid else "")
    lines = [f"TexTok vs its no-text baseline on emoji 64 px, {meta['steps']} steps x {meta['batch_size']} images "
             f"each, {meta['tokens']} tokens x {meta['token_dim']} ({meta['num_images']}).", "", head, sep]
    for split, rows in results.items():
        for name in MODELS:
            r = rows[name]
            cells = f"| {split} | {'TexTok' if name == 'textok' else 'baseline'} | {r['psnr']:.2f} | {r['ssim']:.4f} | {r['lpips']:.4f} |"
            if rfid:
                cells += f" {r['rfid']:.2f} |" if r.get("rfid") is not None else " – |"
            lines.append(cells)
    lines += ["", *verdict(results)]
    return "\n".join(lines) + "\n"


# ---- the shipped pair ---------------------------------------------------------------------

def shipped_pair(root: str | Path | None = None) -> dict | None:
    """The shipped TexTok and baseline at the largest N both exist for: ``{"num_tokens": N,
    "textok": folder, "baseline": folder}``, or None (``root``: default the package's
    ``pretrained/``, see ``textok.explore.shipped_checkpoints``)."""
    import re

    from . import explore

    textok, baseline = explore.shipped_checkpoints(root)

    def by_n(paths):
        return {int(m.group(1)): p for p in paths if (m := re.search(r"-n(\d+)$", p.name))}

    t, b = by_n(textok), by_n(baseline)
    common = sorted(set(t) & set(b))
    if not common:
        return None
    n = common[-1]
    return {"num_tokens": n, "textok": t[n], "baseline": b[n]}


def read_source(folder: Path) -> dict:
    """A shipped folder's ``SOURCE.json`` (run, steps, the study's scores), or {} if absent."""
    import json

    path = Path(folder) / "SOURCE.json"
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        log.warning("%s: not valid JSON; ignored", path)
        return {}


@torch.no_grad()
def score_models(models: dict, root: Path, split: str, num: int | None = None, batch_size: int = 64,
                 progress: bool = True, lpips_net=None, caption_variant: str = "full") -> dict[str, dict]:
    """PSNR, SSIM and LPIPS of each model on ``num`` evenly spaced images of ``split`` (all when
    None), with ``evaluate_tokenizer``'s protocol (centre crop, reconstructions and originals
    rounded to uint8 before every metric, the data set's text cache where exact) but no
    Inception. Each batch is read once and reconstructed by every model."""
    from tqdm.auto import tqdm

    from .conditioning import text_condition
    from .data import open_dataset
    from .losses import LPIPS
    from .metrics import psnr, ssim
    from .metrics.evaluate import iterate_batches
    from .metrics.image import quantize

    sizes = {m.config.image_size for m in models.values()}
    if len(sizes) != 1:
        raise ValueError(f"the models differ in image size: {sorted(sizes)}")
    dataset = open_dataset(str(root), split=split, image_size=sizes.pop(), train=False, caption_variant=caption_variant)
    lpips_net = lpips_net if lpips_net is not None else LPIPS().eval()
    conds: dict = {}
    for name, m in models.items():
        c = m.config
        if c.text_in != "none" and (c.text_encoder, c.max_text_tokens) not in conds:
            conds[(c.text_encoder, c.max_text_tokens)] = TextConditioner(c.text_encoder, c.max_text_tokens, str(root),
                                                                         use_cache=True)
    acc = {name: {"psnr": [], "ssim": [], "lpips": []} for name in models}
    n = 0
    total = len(dataset) if num is None else min(num, len(dataset))
    with tqdm(total=total, desc=f"{split} score {' + '.join(models)}", unit="img", disable=not progress,
              leave=False) as bar:
        for batch in iterate_batches(dataset, num, batch_size):
            x = batch["images"]
            x8 = quantize(x).to(torch.uint8)
            for name, m in models.items():
                c = m.config
                enc = conds.get((c.text_encoder, c.max_text_tokens))
                text = text_condition(m, batch["captions"], x.shape[0], enc)
                rec8 = quantize(m.decode(m.encode(x, text), text)).to(torch.uint8)
                acc[name]["psnr"].append(psnr(x8, rec8))
                acc[name]["ssim"].append(ssim(x8, rec8))
                acc[name]["lpips"].append(lpips_net(x8.float() / 127.5 - 1.0, rec8.float() / 127.5 - 1.0).double())
            n += x.shape[0]
            bar.update(x.shape[0])
    if n == 0:
        raise ValueError(f"{root} [{split}]: no images to score")
    return {name: {k: float(torch.cat(v).mean()) for k, v in a.items()} | {"num": n} for name, a in acc.items()}


def shipped_reference(folder: Path | None, root: Path, split: str, image_size: int, eval_limit: int | None,
                      extractor) -> Stats | None:
    """The Inception features of ``split``'s originals shipped in ``folder`` (``emoji<size>-<split>-inception.npz``,
    written by ``textok fid-stats --features-only --dtype float16``), or None when there is no such file or it
    does not hold exactly these images (``image_fingerprint``) from this network: the demo then computes them
    (one Inception pass, ~2 min on an AVX2-only 2-core CPU)."""
    from .metrics import check_reference, image_fingerprint, load_stats

    path = None if folder is None else Path(folder) / f"emoji{image_size}-{split}-inception.npz"
    if path is None or not path.is_file():
        return None
    try:
        stats = load_stats(path)
        n = stats.num if eval_limit is None else min(eval_limit, stats.num or eval_limit)
        check_reference(stats, n, image_fingerprint(root, split, image_size, eval_limit), extractor, str(path))
    except ValueError as e:
        print(f"   not using the shipped Inception features: {e}", flush=True)
        return None
    return stats


def rescore(models: dict, root: Path, eval_limit: int | None, rfid_splits: Sequence[str] = (),
            progress: bool = True, reference_dir: Path | None = None) -> dict[str, dict]:
    """{split: {"baseline": scores, "textok": scores}} of the shipped pair; rFID on ``rfid_splits``
    (the originals' Inception features from ``shipped_reference(reference_dir, ...)`` where they match)."""
    results = {}
    extractor, lpips_net = None, None
    for split in SPLITS:
        if split in rfid_splits:
            from .metrics import InceptionFeatures, evaluate_tokenizer

            if extractor is None:
                extractor = InceptionFeatures()
            reference = shipped_reference(reference_dir, root, split, models["textok"].config.image_size, eval_limit,
                                          extractor)
            originals = (f"the originals' Inception features shipped in {reference_dir} (same images and network, "
                         f"checked by SHA-256)" if reference is not None else
                         "Inception features of the originals once")
            print(f"== re-scoring on {split}: reconstructing with the baseline and TexTok, PSNR, SSIM, LPIPS and rFID "
                  f"({originals}, then of each model's reconstructions: the slow part on a CPU) ...", flush=True)
            report = evaluate_tokenizer([models["baseline"], models["textok"]], str(root), num=eval_limit, split=split,
                                        names=list(MODELS), extractor=extractor, progress=progress, grid_images=0,
                                        reference=reference)
            results[split] = {r["name"]: {"psnr": r["psnr"], "ssim": r["ssim"], "lpips": r["lpips"], "rfid": r["rfid"],
                                          "num": r["num"]} for r in report["results"]}
        else:
            if lpips_net is None:
                from .losses import LPIPS

                lpips_net = LPIPS().eval()
            print(f"== re-scoring on {split}: reconstructing with the baseline and TexTok, PSNR, SSIM, LPIPS ...",
                  flush=True)
            results[split] = score_models({k: models[k] for k in MODELS}, root, split, eval_limit, progress=progress,
                                          lpips_net=lpips_net)
    return results


def grid_items(root: Path, split: str, image_size: int, rows: int) -> tuple[torch.Tensor, list[str]]:
    """``rows`` evenly spaced images of ``split`` (the split is sorted by category) and their captions."""
    from .data import open_dataset
    from .metrics.evaluate import subset_indices

    ds = open_dataset(str(root), split=split, image_size=image_size, train=False)
    items = [it for it in (ds[i] for i in subset_indices(len(ds), rows)) if it is not None]
    return torch.stack([it["image"] for it in items]), [it["caption"] for it in items]


@torch.no_grad()
def write_shipped_grids(out: Path, models: dict, root: Path, rows: int) -> dict:
    """``reconstructions.png`` (original | baseline | TexTok) and ``caption_swap.png`` (... | TexTok
    decoding the same tokens with another row's caption), ``caption_swap.txt`` with the captions.
    Returns the rows' captions and the PSNR of each column against the original."""
    from .metrics import psnr

    images, captions = grid_items(root, "val", models["textok"].config.image_size, rows)
    t = models["textok"]
    text = TextConditioner(t.config.text_encoder, t.config.max_text_tokens, str(root), use_cache=True)
    # another image's caption: the row half the grid away (another category: the split is sorted by category)
    others = [captions[(i + max(1, len(captions) // 2)) % len(captions)] for i in range(len(captions))]
    if len(captions) == 1:
        others = [""]  # one row: the empty caption
    b = models["baseline"]
    rec_b = b.decode(b.encode(images, None), None).clamp(-1, 1)
    own, other = text(captions), text(others)
    tokens = t.encode(images, own)
    rec_t = t.decode(tokens, own).clamp(-1, 1)
    swapped = t.decode(tokens, other).clamp(-1, 1)
    write_grid(out / "reconstructions.png", images, {"baseline": rec_b, "textok": rec_t}, captions)
    write_grid(out / "caption_swap.png", images, {"baseline": rec_b, "textok": rec_t, "swapped": swapped},
               [f"caption: {c}\nswapped: {o}" for c, o in zip(captions, others)], scale=3, min_width=480)
    lines = ["caption_swap.png: original | baseline | TexTok | TexTok decoding the same tokens with the "
             "swapped caption", ""]
    for i, (c, o) in enumerate(zip(captions, others)):
        lines.append(f"row {i + 1}: caption {c!r}; swapped in {o!r}")
    write_text_atomic(out / "caption_swap.txt", "\n".join(lines) + "\n")
    rows_out = []
    for i, (c, o) in enumerate(zip(captions, others)):
        rows_out.append({"caption": c, "swapped_caption": o,
                         "psnr": {k: float(psnr(v[i : i + 1], images[i : i + 1])[0])
                                  for k, v in (("baseline", rec_b), ("textok", rec_t), ("swapped", swapped))}})
    return {"rows": rows_out}


def short_run(cfg, out: Path, root: Path, eval_limit: int | None, progress: bool = True,
              lpips_net=None) -> dict:
    """Train TexTok from scratch for ``cfg.schedule.max_steps`` steps in ``out/short_run``,
    printing the mean loss every tenth of the run; then score its EMA model on ``val``."""
    import shutil

    from .models import TexTok
    from .training import TokenizerTask, Trainer

    run = out / "short_run"
    if run.exists():  # always from scratch: the point is to watch it train
        shutil.rmtree(run)
    steps = cfg.schedule.max_steps
    every = max(1, steps // 10)
    losses: list[float] = []
    curve: list[dict] = []

    class LoggedTrainer(Trainer):
        def train_step(self, micro):
            logs = super().train_step(micro)
            losses.append(float(logs["loss"]))
            done = len(losses)
            if done % every == 0 or done == steps:
                window = losses[-(done - (curve[-1]["step"] if curve else 0)):]
                curve.append({"step": done, "loss": sum(window) / len(window)})
                print(f"   step {done:5d}/{steps}  loss {curve[-1]['loss']:.4f} (mean of steps "
                      f"{done - len(window) + 1}-{done})", flush=True)
            return logs

    print(f"== short training run: TexTok ({cfg.model.image_size} px, {cfg.model.num_tokens} tokens x "
          f"{cfg.model.token_dim}) from scratch, {steps} steps x {cfg.optim.batch_size} images", flush=True)
    t0 = time.perf_counter()
    result = LoggedTrainer(TokenizerTask(cfg), cfg, run).train()
    seconds = time.perf_counter() - t0
    model = TexTok.from_pretrained(run / "model")
    print("== scoring the short run on val ...", flush=True)
    val = score_models({"short_run": model}, root, "val", eval_limit, progress=progress,
                       lpips_net=lpips_net)["short_run"]
    return {"steps": result.step, "batch_size": cfg.optim.batch_size, "train_seconds": round(seconds, 1),
            "images_per_second": round(result.images_per_second, 2), "loss_curve": curve,
            "loss_first": curve[0]["loss"] if curve else None, "loss_last": curve[-1]["loss"] if curve else None,
            "val": val, "folder": str(run)}


def _diffs(t: dict, b: dict) -> dict[str, float]:
    return {k: t[k] - b[k] for k in ("psnr", "ssim", "lpips", "rfid") if t.get(k) is not None and b.get(k) is not None}


def shipped_verdict(results: dict, meta: dict, short: dict | None) -> list[str]:
    """Sentences computed from the numbers: the pair's differences per split, what they do not
    show, and what the short run shows."""
    lines = []
    for split, rows in results.items():
        d = _diffs(rows["textok"], rows["baseline"])
        ahead = [k for k, v in d.items() if (v > 0 if k in ("psnr", "ssim") else v < 0)]
        names = {"psnr": "PSNR", "ssim": "SSIM", "lpips": "LPIPS", "rfid": "rFID"}
        parts = [f"PSNR {d['psnr']:+.2f} dB", f"SSIM {d['ssim']:+.4f}", f"LPIPS {d['lpips']:+.4f}"]
        if "rfid" in d:
            parts.append(f"rFID {d['rfid']:+.2f}")
        lines.append(f"- `{split}` ({rows['textok']['num']} images): TexTok minus baseline: {', '.join(parts)}; "
                     f"TexTok is ahead on {len(ahead)}/{len(d)} metrics "
                     f"({', '.join(names[k] for k in ahead) or 'none'}).")
    unconverged = [k for k in ("textok", "baseline") if (meta["source"][k].get("convergence") or {}).get("converged") is False]
    if unconverged:  # SOURCE.json of studies/emoji32/ship_checkpoints.py
        lines.append(f"The shipped {' and '.join('TexTok' if k == 'textok' else 'baseline' for k in unconverged)} "
                     f"{'is' if len(unconverged) == 1 else 'are'} **provisional**: not yet converged by the study's "
                     "rule (doubling the budget still moves val PSNR by 0.3 dB or more), so these numbers are a point "
                     "on a learning curve, not the method's result.")
    runs = " and ".join(f"`{meta['source'][k]['run']}`" for k in ("textok", "baseline") if meta["source"][k].get("run"))
    lines.append(f"These are single-seed checkpoints, one training run per arm{' (' + runs + ')' if runs else ''}: "
                 f"a difference between them is not a claim that the caption helps or hurts. The seeded comparison "
                 f"(several seeds per arm, with their spread) is in {REPRODUCTION_PAGE}.")
    if short:
        ship = results["val"]["textok"]["psnr"]
        fell = short["loss_first"] is not None and short["loss_last"] < short["loss_first"]
        s_steps = meta["source"]["textok"].get("steps")
        lines.append(
            f"Training works: the {short['steps']}-step run from scratch "
            + (f"lowered its loss from {short['loss_first']:.4f} to {short['loss_last']:.4f}"
               if fell else f"did not lower its loss ({short['loss_first']:.4f} -> {short['loss_last']:.4f})")
            + f" and reaches val PSNR {short['val']['psnr']:.2f} dB on {short['val']['num']} images, against "
            f"{ship:.2f} dB for the shipped TexTok"
            + (f", trained {s_steps} steps in the study." if s_steps else "."))
        if not fell:
            lines[-1] = lines[-1].replace("Training works: the", "Training did not visibly progress: the")
    return lines


def shipped_markdown(results: dict, meta: dict, short: dict | None) -> str:
    rfid_on = [split for split, rows in results.items() if any("rfid" in r for r in rows.values())]
    rfid = bool(rfid_on)
    src = meta["source"]
    study = {k: (src[k].get("study_scores") or {}) for k in MODELS}
    show_study = meta["eval_limit"] is None and any(study.values())

    def who(k):
        s = src[k]
        return (f"{'TexTok' if k == 'textok' else 'baseline'} `{meta['folders'][k]}`"
                + (f" (run `{s['run']}`, {s['steps']} steps)" if s.get("run") else ""))

    counts = ", ".join(f"{rows['textok']['num']} `{split}`" for split, rows in results.items())
    lines = [f"The shipped pair at N = {meta['tokens']} tokens x {meta['token_dim']} channels, emoji "
             f"{meta['image_size']} px: {who('textok')} vs {who('baseline')}"
             + (f"; {src['textok']['dtype']} weights loaded as float32" if src["textok"].get("dtype") else "") + "; "
             f"re-scored here on {'every image of' if meta['eval_limit'] is None else 'evenly spaced images of'} "
             f"each split ({counts} images). Reconstructions and originals rounded to uint8 before scoring"
             + (f"; rFID (on {' and '.join(f'`{x}`' for x in rfid_on)}"
                + (", not on the others: `--rfid-splits` adds them" if len(rfid_on) < len(results) else "")
                + "): each model's reconstructions vs the same originals, biased upward at these counts, "
                "comparable only within this table" if rfid else "") + ".", ""]
    head = "| split | model | PSNR (dB) ↑ | SSIM ↑ | LPIPS ↓ |" + (" rFID ↓ |" if rfid else "")
    sep = "|---|---|---:|---:|---:|" + ("---:|" if rfid else "")
    if show_study:
        head += " study's PSNR (fp32) |"
        sep += "---:|"
    lines += [head, sep]
    for split, rows in results.items():
        for name in MODELS:
            r = rows[name]
            cells = (f"| {split} ({r['num']}) | {'TexTok' if name == 'textok' else 'baseline'} | {r['psnr']:.2f} | "
                     f"{r['ssim']:.4f} | {r['lpips']:.4f} |")
            if rfid:
                cells += f" {r['rfid']:.2f} |" if r.get("rfid") is not None else " – |"
            if show_study:
                v = (study[name].get(split) or {}).get("psnr")
                cells += f" {v:.2f} |" if v is not None else " - |"
            lines.append(cells)
    if short:
        v = short["val"]
        curve = ", ".join(f"{c['loss']:.4f}" for c in short["loss_curve"])
        lines += ["", f"Short run (TexTok from scratch, same recipe and N, {short['steps']} steps x "
                      f"{short['batch_size']} images, {short['train_seconds']:.0f} s): loss per tenth of the run "
                      f"{curve}.", "",
                  "| model | steps | val PSNR (dB) ↑ | SSIM ↑ | LPIPS ↓ |", "|---|---:|---:|---:|---:|",
                  f"| short run | {short['steps']} | {v['psnr']:.2f} | {v['ssim']:.4f} | {v['lpips']:.4f} |"]
        t = results["val"]["textok"]
        lines.append(f"| shipped TexTok | {src['textok'].get('steps') or '?'} | {t['psnr']:.2f} | {t['ssim']:.4f} | "
                     f"{t['lpips']:.4f} |")
    verdict_lines = shipped_verdict(results, meta, short)
    bullets = [v for v in verdict_lines if v.startswith("- ")]
    lines += ["", *bullets]
    for v in verdict_lines[len(bullets):]:  # paragraphs after the list
        lines += ["", v]
    return "\n".join(lines) + "\n"


def demo_shipped(pair: dict, out: Path, config: str | Path | None, overrides: Sequence[str], eval_limit: int | None,
                 grid_rows: int, rfid_splits: Sequence[str], train_steps: int, progress: bool = True) -> dict:
    """The demo with a shipped pair: re-score, grids, a short run, the report."""
    from .models import TexTok
    from .training import load_config

    t0 = time.perf_counter()
    n = pair["num_tokens"]
    source = {k: read_source(pair[k]) for k in MODELS}
    if config is None:  # the short run trains the recipe the shipped TexTok came from
        recipe = source["textok"].get("recipe")
        config = f"configs/{recipe}" if recipe else SHIPPED_CONFIG
    cfg = load_config(_find_config(config), [f"model.num_tokens={n}", f"schedule.max_steps={max(train_steps, 1)}",
                                             "logging.progress=false", *overrides])
    root = ensure_emoji(cfg.data.root)
    models = {k: TexTok.from_pretrained(pair[k]) for k in MODELS}
    print(f"== shipped checkpoints: TexTok {pair['textok'].name} and baseline {pair['baseline'].name} "
          f"(N = {n} tokens; from {', '.join(str(source[k].get('run') or '?') for k in ('textok', 'baseline'))})",
          flush=True)
    results = rescore(models, root, eval_limit, rfid_splits, progress, reference_dir=pair["textok"].parent)
    rescore_seconds = time.perf_counter() - t0
    grids = write_shipped_grids(out, models, root, grid_rows)
    short = None
    if train_steps > 0:
        short = short_run(cfg, out, root, eval_limit, progress)
    c = models["textok"].config
    meta = {"mode": "shipped", "tokens": n, "token_dim": c.token_dim, "image_size": c.image_size,
            "folders": {k: pair[k].name for k in MODELS}, "paths": {k: str(pair[k]) for k in MODELS},
            "source": {k: {f: source[k].get(f) for f in ("run", "steps", "date", "dtype", "study_scores",
                                                         "convergence", "float16_vs_float32")}
                       for k in MODELS},
            "num_images": {split: results[split]["textok"]["num"] for split in results},
            "eval_limit": eval_limit, "rfid": list(rfid_splits), "train_steps": train_steps,
            "rescore_seconds": round(rescore_seconds, 1), "total_seconds": round(time.perf_counter() - t0, 1),
            "threads": torch.get_num_threads(), "config": str(config), "overrides": list(overrides)}
    md = shipped_markdown(results, meta, short)
    verdict_lines = shipped_verdict(results, meta, short)
    write_text_atomic(out / "results.md", md)
    write_json_atomic(out / "results.json", {"mode": "shipped", "results": results, "short_run": short,
                                             "grids": grids, "meta": meta, "verdict": verdict_lines})
    print()
    print(md)
    print(f"wrote {out / 'reconstructions.png'} (original | baseline | TexTok), {out / 'caption_swap.png'} "
          f"(+ TexTok with another image's caption; captions in caption_swap.txt), {out / 'results.md'}, "
          f"{out / 'results.json'}; everything took {meta['total_seconds']:.0f}s")
    return {"mode": "shipped", "results": results, "short_run": short, "meta": meta}


def demo(out: str | Path = "demo_out", config: str | Path | None = None, overrides: Sequence[str] = (),
         eval_limit: int | None = None, grid_rows: int = 8, rfid: bool = False, threads: int | None = None,
         train_steps: int = DEFAULT_TRAIN_STEPS, pretrained: str | Path | None = None,
         rfid_splits: Sequence[str] = ("val",)) -> dict:
    """Run the whole demo; returns the results dict written to ``out/results.json``.

    With a shipped pair under ``pretrained`` (default: the package's ``pretrained/``) it is
    re-scored and a ``train_steps`` run (0: none) is trained from ``config`` (default: the recipe
    the shipped TexTok's ``SOURCE.json`` names, else ``SHIPPED_CONFIG``); without one, the 64 px
    pair is trained from ``config`` (default ``DEFAULT_CONFIG``). ``overrides`` apply to whatever
    is trained. ``rfid`` adds rFID on the splits in ``rfid_splits`` (``val``, ``val_unseen``)."""
    from .models import TexTok
    from .training import load_config

    unknown = sorted(set(rfid_splits) - set(SPLITS))
    if unknown:
        raise ValueError(f"rfid_splits: unknown split(s) {unknown}; the demo scores {list(SPLITS)}")
    rfid_splits = [s for s in SPLITS if rfid and s in rfid_splits]
    if threads:
        torch.set_num_threads(threads)
    if train_steps < 0:
        raise ValueError(f"--train-steps must be >= 0, got {train_steps}")
    out = Path(out)
    pair = shipped_pair(pretrained)
    if pair is not None:
        return demo_shipped(pair, out, config, list(overrides), eval_limit, grid_rows, rfid_splits,
                            train_steps)
    from . import explore

    where = Path(pretrained) if pretrained is not None else explore.PRETRAINED_DIR
    print(f"note: no shipped checkpoints (emoji32-textok-n<N> + emoji32-baseline-n<N>) in {where}; training the "
          f"64 px pair instead", flush=True)
    config = config or DEFAULT_CONFIG
    cfg = load_config(_find_config(config), list(overrides))
    root = ensure_emoji(cfg.data.root)
    t0 = time.perf_counter()
    runs = train_pair(cfg, out)
    train_seconds = time.perf_counter() - t0
    models = {name: TexTok.from_pretrained(path) for name, path in runs.items()}
    results, counts = {}, {}
    for split in SPLITS:
        print(f"== evaluating on {split}: reconstructing with {' and '.join(models)}"
              f"{', then PSNR, SSIM, LPIPS' + (' and rFID (Inception)' if split in rfid_splits else '')} ...", flush=True)
        images, recs, captions = reconstruct_split(models, root, split, eval_limit)
        counts[split] = len(images)
        results[split] = score(images, recs, split in rfid_splits, split=split)
        if split == "val":  # rows spread over the split (it is sorted by category)
            rows = torch.linspace(0, len(images) - 1, min(grid_rows, len(images))).long()
            write_grid(out / "reconstructions.png", images[rows], {k: v[rows] for k, v in recs.items()},
                       [captions[i] for i in rows.tolist()])
    meta = {"steps": cfg.schedule.max_steps, "batch_size": cfg.optim.batch_size, "tokens": cfg.model.num_tokens,
            "token_dim": cfg.model.token_dim,
            "num_images": ", ".join(f"{counts[s]} {s} images" for s in SPLITS),
            "train_seconds": round(train_seconds, 1), "total_seconds": round(time.perf_counter() - t0, 1),
            "threads": torch.get_num_threads(), "config": str(config), "overrides": list(overrides)}
    md = markdown(results, meta)
    write_text_atomic(out / "results.md", md)
    write_json_atomic(out / "results.json", {"mode": "trained", "results": results, "meta": meta,
                                             "verdict": verdict(results)})
    print()
    print(md)
    print(f"wrote {out / 'reconstructions.png'} (original | baseline | TexTok), {out / 'results.md'}, "
          f"{out / 'results.json'}; training took {train_seconds:.0f}s, everything {meta['total_seconds']:.0f}s")
    return {"mode": "trained", "results": results, "meta": meta}
