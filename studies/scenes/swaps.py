"""What the caption controls (issue 36, item 4): decode the same tokens with a caption where one factor is swapped.

For ``--num`` ``val`` scenes, each tokenizer encodes the image with its own caption, then decodes those
tokens with (a) the same caption (the control), and with one factor of one object (or the
background) changed in the caption:

- **colour**: "a large red circle at top left" -> "a large purple circle at top left";
- **position**: "... at top left" -> "... at bottom right" (the mirrored cell, or the first free one);
- **background**: "on a grey background" -> "on a brown background".

A detector that knows the render layout (``textok.data.scenes.colour_at``: the disc where an object is
drawn, fitted as a named colour mixed with the background) reads the decoded image: a swap is
*followed* when the decoded image shows the new value (the colour at the object's place; an object of
its colour at the new cell and none left at the old one; the background of the empty cells), and
*exact* when, in addition, the other objects keep their colours. The baseline ignores captions: its
rates are the detector's floor.

    python -m studies.scenes.swaps                      # textok-n1-s0, textok-n4-s0, baseline-n1-s0 at their last budget
    python -m studies.scenes.swaps --runs textok-n1-s0 --steps 2500 --num 100
    python -m studies.scenes.swaps --phase trained      # the trained phase's, at their final rung (plateau or cap)

Writes ``docs/results/scenes/swaps.json`` and ``docs/results/scenes/swaps.png`` (per tokenizer, rows: original,
decoded with its caption, colour swap, position swap, background swap; each tokenizer's block also in
``swaps/<run>.png``); the trained phase's go to ``docs/results/scenes/trained/``. Runs already in ``swaps.json``
that are not measured again are kept (``--replace`` forgets them); every run records the commit and CPU it ran on.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from ..common import git_commit
from . import run as study  # studies/scenes/run.py: paths, runs, score files

OUT = study.REPO / "docs" / "results" / "scenes"
RUNS = ("textok-n1-s0", "textok-n4-s0", "baseline-n1-s0")
FACTORS = ("colour", "position", "background")
ALPHA = 0.5  # an object is "there" when the detector's mixing weight exceeds this


def swaps(entry: dict, index: int) -> dict[str, dict]:
    """The swapped captions of one ``captions.jsonl`` entry: factor -> ``{"caption", "object", "new"}``
    (``textok.data.scenes.swap_scene`` with ``index``: the object changed cycles through the scenes' objects)."""
    from textok.data import scenes

    out = {}
    for factor in FACTORS:
        new_scene, _ = scenes.swap_scene(entry, factor, index)
        if factor == "background":
            out[factor] = {"object": None, "new": new_scene["background"]}
        else:  # the edited object keeps its place in the list
            j = next(j for j, (a, b) in enumerate(zip(entry["objects"], new_scene["objects"])) if a != b)
            out[factor] = {"object": j, "new": new_scene["objects"][j]["colour" if factor == "colour" else "cell"]}
        out[factor]["caption"] = scenes.scene_captions(new_scene)["full"]
    return out


def cell_centre(cell: int, size: int) -> tuple[float, float]:
    row, col = divmod(cell, 3)
    return (col + 0.5) * size / 3, (row + 0.5) * size / 3


def background_of(image: np.ndarray, occupied: set[int]) -> str:
    """The named background nearest to the median colour of the empty cells' centres (all cells' corners if
    every cell is taken)."""
    from textok.data import scenes

    size = image.shape[0]
    cells = [c for c in range(9) if c not in occupied]
    if cells:
        pts = [cell_centre(c, size) for c in cells]
        pixels = np.array([image[int(y), int(x)] for x, y in pts], dtype=np.float64)
    else:
        pixels = image[[0, 0, -1, -1], [0, -1, 0, -1]].astype(np.float64)
    med = np.median(pixels, axis=0)
    return min(scenes.BACKGROUNDS, key=lambda b: float(((np.array(scenes.BACKGROUNDS[b]) - med) ** 2).sum()))


def judge(image: np.ndarray, entry: dict, factor: str | None, swap: dict | None) -> dict:
    """Whether ``image`` (uint8 [S, S, 3]) shows the swapped value (``followed``) and keeps the other objects'
    colours (``others_kept``); for the control (``factor=None``) whether it shows the caption's own scene."""
    from textok.data import scenes

    objs, bg = entry["objects"], entry["background"]
    occupied = {o["cell"] for o in objs}
    if factor == "background":
        bg_seen = background_of(image, occupied)
        followed = bg_seen == swap["new"]
        bg_used = bg_seen  # the colours of the objects are read against the background actually drawn
    else:
        bg_used = bg
    size = image.shape[0]
    kept = []
    followed_obj = None
    for j, o in enumerate(objs):
        name, alpha = scenes.colour_at(image, o["x"], o["y"], o["radius"], bg_used)
        if factor == "colour" and j == swap["object"]:
            followed_obj = name == swap["new"] and alpha > ALPHA
        elif factor == "position" and j == swap["object"]:
            x, y = cell_centre(swap["new"], size)
            margin = scenes.jitter_steps(size) / scenes.SUPERSAMPLE
            new_name, new_alpha = scenes.colour_at(image, x, y, o["radius"] + margin, bg_used)
            _, old_alpha = scenes.colour_at(image, o["x"], o["y"], o["radius"], bg_used)
            appears, vacated = new_name == o["colour"] and new_alpha > ALPHA, old_alpha < ALPHA
            followed_obj = appears and vacated
        else:
            kept.append(name == o["colour"] and alpha > ALPHA)
    if factor in ("colour", "position"):
        followed = bool(followed_obj)
    elif factor is None:
        followed = all(kept) and background_of(image, occupied) == bg
    others = all(kept)
    return {"followed": bool(followed), "others_kept": bool(others), "exact": bool(followed and others)}


def to_uint8(images) -> np.ndarray:
    """[B, 3, S, S] in [-1, 1] -> uint8 [B, S, S, 3], rounded as the metrics quantize."""
    import torch

    x = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


def measure(model_dir: Path, data: str, num: int, batch: int = 50, grid: int = 6) -> tuple[dict, list]:
    """Swap rates of one tokenizer on the first ``num`` val scenes, and ``grid`` columns of pictures."""
    import torch

    from textok.data import open_dataset
    from textok.tokenizer import CaptionedTokenizer

    tok = CaptionedTokenizer.from_pretrained(model_dir, use_cache=False)
    size = tok.config.image_size
    ds = open_dataset(data, "val", image_size=size)
    entries = {e["file"]: e for e in map(json.loads, (Path(data) / "captions.jsonl").read_text().splitlines())}
    num = min(num, len(ds))
    counts = {f: {"followed": 0, "others_kept": 0, "exact": 0} for f in ("control", *FACTORS)}
    pictures = []
    for start in range(0, num, batch):
        items = [ds[i] for i in range(start, min(num, start + batch))]
        images = torch.stack([it["image"] for it in items])
        es = [entries[it["key"]] for it in items]
        sw = [swaps(e, start + k) for k, e in enumerate(es)]
        tokens = tok.encode(images, [e["caption"] for e in es])
        decoded = {"control": to_uint8(tok.decode(tokens, [e["caption"] for e in es]))}
        for f in FACTORS:
            decoded[f] = to_uint8(tok.decode(tokens, [s[f]["caption"] for s in sw]))
        for k, e in enumerate(es):
            for f in ("control", *FACTORS):
                r = judge(decoded[f][k], e, None if f == "control" else f, None if f == "control" else sw[k][f])
                for key in r:
                    counts[f][key] += r[key]
            if len(pictures) < grid:
                pictures.append({"original": to_uint8(images[k:k + 1])[0], **{f: decoded[f][k] for f in decoded},
                                 "captions": {"original": e["caption"], **{f: sw[k][f]["caption"] for f in FACTORS}}})
    rates = {f: {key: round(v / num, 4) for key, v in c.items()} for f, c in counts.items()}
    return {"num_images": num, "rates": rates}, pictures


def draw_block(name: str, pics: list, scale: int = 3):
    """One tokenizer's block (a PIL image): columns are scenes, rows original / control / colour / position /
    background."""
    from PIL import Image, ImageDraw

    rows = ("original", "control", *FACTORS)
    s = pics[0]["original"].shape[0] * scale
    label_w = 90
    img = Image.new("RGB", (label_w + len(pics) * (s + 4), 16 + len(rows) * (s + 4)), (255, 255, 255))
    d = ImageDraw.Draw(img)
    d.text((2, 2), name, fill=(0, 0, 0))
    for r, row in enumerate(rows):
        d.text((2, 16 + r * (s + 4) + s // 2 - 5), row, fill=(0, 0, 0))
        for c, p in enumerate(pics):
            tile = Image.fromarray(p[row]).resize((s, s), Image.NEAREST)
            img.paste(tile, (label_w + c * (s + 4), 16 + r * (s + 4)))
    return img


def stack(blocks: list, path: Path, gap: int = 8) -> None:
    """Blocks (PIL images) one under the other, ``gap`` white pixels apart, saved to ``path``."""
    from PIL import Image

    w, h = max(b.width for b in blocks), sum(b.height for b in blocks) + gap * (len(blocks) - 1)
    sheet = Image.new("RGB", (w, h), (255, 255, 255))
    y = 0
    for b in blocks:
        sheet.paste(b, (0, y))
        y += b.height + gap
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)


def stage_budget(name: str, phase: "study.Phase", results: Path, steps: int | None) -> tuple[int | None, str]:
    """The budget whose stage model of run ``name`` to use: ``steps``, else on the ladder the run's final rung
    (None while it is still climbing), else its last scored budget; and why, for the skip line."""
    if steps:
        return steps, ""
    record = study.load_scores(results, name)
    if phase.ladder:
        status = study.recorded_status(record, study.default_max_steps(results, phase))
        return status["final"], f"not final yet ({study.describe_status(status)})"
    done = sorted(int(b) for b in record.get("budgets", {}))
    return (done[-1] if done else None), "nothing scored"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--phase", choices=list(study.PHASES), default="first",
                   help="whose tokenizers: the first phase's (issue 36) or the trained phase's (issue 44)")
    p.add_argument("--runs", nargs="*", default=list(RUNS))
    p.add_argument("--steps", type=int, default=None,
                   help="the budget whose stage model to use (default: trained, the final rung; first, the last "
                        "scored)")
    p.add_argument("--num", type=int, default=200, help="val scenes")
    p.add_argument("--data", default=None, help="the scenes data set (default: the phase's)")
    p.add_argument("--work", type=Path, default=None, help="the driver's work folder (default: the phase's)")
    p.add_argument("--results", type=Path, default=None, help="the score files (default: the phase's)")
    p.add_argument("--out", type=Path, default=None,
                   help="swaps.json and swaps.png (default: docs/results/scenes, trained: docs/results/scenes/trained)")
    p.add_argument("--replace", action="store_true",
                   help="forget the runs of an earlier swaps.json in --out (default: keep those not measured now)")
    args = p.parse_args(argv)
    phase = study.PHASES[args.phase]
    data, work, results = args.data or phase.data, args.work or phase.work, args.results or phase.results
    out = args.out or (OUT / "trained" if phase.ladder else OUT)
    import torch

    from textok.io import write_json_atomic
    from textok.training import cpu_name

    machine = {"commit": git_commit(), "cpu": cpu_name(), "threads": torch.get_num_threads()}
    # Earlier runs of this phase stay (each with the commit and CPU it ran on): stage models do not survive a new
    # machine, so seeds measured on different hosts end up in one table.
    before = json.loads((out / "swaps.json").read_text()) if (out / "swaps.json").is_file() and not args.replace \
        else {}
    if before and before.get("phase") != phase.name:
        raise SystemExit(f"{out / 'swaps.json'} holds the {before.get('phase')!r} phase's swaps, not {phase.name!r}'s; "
                         "pick another --out or pass --replace")
    report = {n: {**{k: before.get(k) for k in machine}, **r} for n, r in before.get("runs", {}).items()}
    captions = dict(before.get("captions", {}))
    measured = 0
    for name in args.runs:
        steps, why = stage_budget(name, phase, results, args.steps)
        model = work / "stages" / name / f"step_{steps or 0:07d}"
        if steps is None or not model.is_dir():
            print(f"[swaps] {name}: no stage model at {model}" + (f" ({why})" if steps is None else "") + "; skipped",
                  flush=True)
            continue
        r, pics = measure(model, data, args.num)
        rec = study.load_scores(results, name)
        report[name] = {"steps": steps, "arm": rec.get("arm"), "num_tokens": rec.get("num_tokens"), **r, **machine}
        captions = {k: v for k, v in captions.items() if not k.startswith(f"{name} @ ")}
        captions[f"{name} @ {steps}"] = [p["captions"] for p in pics]
        (out / "swaps").mkdir(parents=True, exist_ok=True)
        draw_block(f"{name} @ {steps}", pics).save(out / "swaps" / f"{name}.png")
        measured += 1
        rates = r["rates"]
        print(f"[swaps] {name} @ {steps}: " + ", ".join(f"{f} followed {rates[f]['followed']:.0%} exact "
                                                       f"{rates[f]['exact']:.0%}" for f in ("control", *FACTORS)),
              flush=True)
    if not measured:
        raise SystemExit(f"no stage model found: run python -m studies.scenes.run --phase {phase.name} first")
    report = dict(sorted(report.items(), key=lambda kv: (kv[1].get("num_tokens") or 0, kv[0])))
    write_json_atomic(out / "swaps.json", {"alpha": ALPHA, "factors": list(FACTORS), "runs": report,
                                           "captions": captions, "phase": phase.name, **machine})
    from PIL import Image

    blocks = [Image.open(out / "swaps" / f"{n}.png") for n in report if (out / "swaps" / f"{n}.png").is_file()]
    stack(blocks, out / "swaps.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
