"""``textok demo`` (``make demo``): a shipped pair at work, re-scored and drawn in a few minutes on a CPU.

``demo("scenes")``, the default, takes the scenes pair (``textok.pretrained.find_pair``: TexTok and its no-text
baseline at the same N, trained on the scenes of seed 0) and (1) draws ``num`` new scenes and ``num`` with held-out
colour-shape pairs from ``seed``, in memory (``textok.data.scenes``); (2) scores the reconstructions with
``evaluate_tokenizer`` (PSNR, SSIM, LPIPS; rFID with ``rfid``) and reads what they show with
``textok.metrics.scenes.score_adherence`` (the originals' column is the detector's ceiling); (3) decodes the same
tokens under a caption with one colour, position or background edited (``swap_scene``) and counts the decodes that
show the edit (``edit_shown``; the baseline reads no caption: its rate is the floor); (4) where the DiTs ship
(``dit_for``), generates ``SAMPLES`` images from each typed caption (``PROMPTS`` + ``prompts``) with each arm's DiT
and reads them; (5) prints one table, writes ``results.md``, ``results.json`` and the pictures into ``out``.

``demo("emoji")``: the emoji pair on the emoji splits, new emoji first (rFID from the Inception features shipped
beside it where they hold these images), and the same tokens decoded with another image's caption.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import torch

from .data import scenes as sc
from .data.transforms import captioned_grid, to_tensor, to_uint8
from .io import atomic_path, write_json_atomic, write_text_atomic
from .pretrained import PRETRAINED_DIR, dit_for, find_pair, read_source, split_label
from .tokenizer import CaptionedTokenizer

PAIRS = {"scenes": "scenes32", "emoji": "emoji32"}
ARMS = {"baseline": "baseline", "textok": "TexTok"}
#: the shipped models were trained on the scenes of seed 0 (data/scenes25k); the demo draws others
SEED = 45
#: new scenes of each kind: the whole demo stays under 5 minutes on a 2-core CPU (docs/demo.md)
NUM_SCENES = 300
#: the typed captions the DiTs generate from (the last holds a colour-shape pair no model was trained on)
PROMPTS = ("a large red circle at center, on a grey background",
           "a small yellow square at top left and a large blue cross at bottom right, on a black background",
           "a large green diamond at top middle, a small white ring at center and a small orange circle at bottom "
           "middle, on a navy background",
           "a large cyan triangle at middle left and a small purple square at middle right, on a brown background",
           "a large red triangle at center, on a black background")
SAMPLES = 4  # images per typed caption and DiT
FACTOR_NAMES = {"exact": "the whole scene", "empty": "nothing extra"}  # textok.metrics.scenes.FACTORS, as printed
EMOJI_SPLITS = ("val_unseen", "val")  # new emoji first
RFID_LIMIT = 300  # images of an emoji split scored with rFID (an Inception pass over 652 takes ~4 min on 2 cores)


def pct(rate: float) -> str:
    return f"{100 * rate:.1f}%"


def _save(image, path: Path) -> None:
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")


def load_pair(kind: str, pretrained: str | Path | None = None) -> tuple[dict, dict]:
    """The shipped pair of ``kind`` (``PAIRS``) and its two ``CaptionedTokenizer``s by arm."""
    pair = find_pair(pretrained, name=PAIRS[kind])
    if pair is None:
        raise FileNotFoundError(f"no shipped pair {PAIRS[kind]}-textok-n<N> + {PAIRS[kind]}-baseline-n<N> in "
                                f"{pretrained or PRETRAINED_DIR}; give --pretrained DIR")
    return pair, {arm: CaptionedTokenizer.from_pretrained(pair[arm]) for arm in ARMS}


def score_pair(models: dict, data, rfid: bool, **settings) -> dict:
    """{arm: {"psnr", "ssim", "lpips", "num"[, "rfid"]}} of both tokenizers on the same images (``evaluate_tokenizer``
    on a data folder's split or a list of item dicts)."""
    from .metrics import evaluate_tokenizer

    report = evaluate_tokenizer(list(models.values()), data, names=list(models), rfid=rfid, grid_images=0, **settings)
    return {r["name"]: {k: r[k] for k in ("psnr", "ssim", "lpips", "num", *(("rfid",) if rfid else ()))}
            for r in report["results"]}


def metric_rows(label: str, scores: dict) -> list[list[str]]:
    shown = (("PSNR (dB) ↑, " + label, "psnr", 2), ("SSIM ↑", "ssim", 4), ("LPIPS ↓", "lpips", 4),
             ("rFID ↓", "rfid", 2))
    return [[name, "–", *(f"{scores[a][k]:.{d}f}" for a in ARMS)] for name, k, d in shown if k in scores["textok"]]


@torch.no_grad()
def _chunks(fn, n: int, size: int = 100) -> torch.Tensor:
    return torch.cat([fn(slice(i, i + size)) for i in range(0, n, size)])


def scenes_demo(out: Path, models: dict, pair: dict, num: int, seed: int, prompts: Sequence[str], rfid: bool,
                rows: int, progress: bool) -> dict:
    """Steps 1-4 of the scenes demo: the numbers by measure, the table's rows, and the pictures written."""
    from .generation import Pipeline
    from .metrics.scenes import edit_shown, score_adherence

    adherence = lambda x, scenes: score_adherence(to_uint8(x), list(scenes))  # noqa: E731  x in [-1, 1]
    size = models["textok"].config.image_size
    drawn = sc.generate_scenes(0, num, size, seed)
    kinds = {"new scenes": drawn["val"], "held-out colour-shape pairs": drawn["val_compositional"]}
    report, table = {"scores": {}, "adherence": {}, "edits": {}, "generated": {}}, []
    for kind, scenes in kinds.items():
        captions = [sc.scene_captions(s)["full"] for s in scenes]
        images = torch.stack([to_tensor(sc.render_scene(s, size)) for s in scenes])
        items = [{"image": x, "caption": c, "label": 0, "key": str(i)} for i, x, c in zip(range(num), images, captions)]
        print(f"== {num} {kind} (seed {seed}): PSNR, SSIM, LPIPS{', rFID' if rfid else ''}, adherence ...", flush=True)
        report["scores"][kind] = scores = score_pair(models, items, rfid, batch_size=100, progress=progress)
        tokens = {a: _chunks(lambda s, t=t: t.encode(images[s], captions[s]), num) for a, t in models.items()}
        recs = {a: _chunks(lambda s, a=a: models[a].decode(tokens[a][s], captions[s]), num) for a in ARMS}
        read = {"originals": adherence(images, scenes), **{a: adherence(recs[a], scenes) for a in ARMS}}
        report["adherence"][kind] = {k: r["summary"] for k, r in read.items()}
        table += metric_rows(f"{num} {kind}", scores)
        factors = ("exact", "background", "colour", "shape", "size", "empty") if kind == "new scenes" else ("exact",)
        table += [[f"reads as its caption: {FACTOR_NAMES.get(f, f)}{', ' + kind if f == 'exact' else ''}",
                   *(pct(report["adherence"][kind][k]["images"][f]) for k in ("originals", *ARMS))] for f in factors]
        if kind != "new scenes":
            continue
        grid = {"original": images[:rows], **{ARMS[a]: recs[a][:rows] for a in ARMS}}
        _save(captioned_grid(grid, captions[:rows], scale=3), out / "reconstructions.png")
        edited = {f: [sc.swap_scene(s, f, i) for i, s in enumerate(scenes)] for f in sc.SWAP_FACTORS}
        shown = {}  # factor -> TexTok's decodes (the last arm)
        for f, pairs in edited.items():
            new = [e for e, _ in pairs]
            caps = [sc.scene_captions(e)["full"] for e in new]
            for a in ARMS:
                shown[f] = _chunks(lambda s, a=a: models[a].decode(tokens[a][s], caps[s]), num)
                judged = adherence(shown[f], new)["images"]
                report["edits"].setdefault(f, {})[a] = sum(map(edit_shown, judged, scenes, new)) / num
        notes = [captions[i] + "".join(f"\n{f}: {edited[f][i][1].split(': ', 1)[1]}" for f in sc.SWAP_FACTORS)
                 for i in range(rows)]
        _save(captioned_grid({"original": images[:rows], "TexTok": recs["textok"][:rows],
                              **{f"{f} edit": shown[f][:rows] for f in sc.SWAP_FACTORS}}, notes, scale=3),
              out / "swaps.png")
    table += [[f"shows an edited {f} (same tokens, new scenes)", "–", *(pct(report["edits"][f][a]) for a in ARMS)]
              for f in sc.SWAP_FACTORS]
    dits = {a: dit_for(pair[a]) for a in ARMS}
    if all(dits.values()):
        wanted = [sc.parse_caption(p) for p in prompts for _ in range(SAMPLES)]
        print(f"== {SAMPLES} images from each of {len(prompts)} captions by each arm's DiT ...", flush=True)
        images = {a: Pipeline.from_pretrained(d)(prompts=[p for p in prompts for _ in range(SAMPLES)], seed=seed)
                  for a, d in dits.items()}
        read = {a: adherence(images[a], wanted)["summary"] for a in ARMS}
        report["generated"] = {"prompts": list(prompts), "samples": SAMPLES, "adherence": read}
        table += [[f"generated from {len(prompts)} captions x {SAMPLES}: {FACTOR_NAMES.get(f, f)}", "–",
                   *(pct(read[a]["images"][f]) for a in ARMS)] for f in ("exact", "colour", "shape", "background")]
        idx = list(range(0, len(wanted), SAMPLES))
        _save(captioned_grid({f"{ARMS[a]} {k + 1}": images[a][[i + k for i in idx]] for a in ARMS
                              for k in range(SAMPLES)}, list(prompts), scale=3), out / "generated.png")
    elif any(dits.values()):
        print(f"note: a DiT ships for one arm only ({[a for a, d in dits.items() if d]}): no generation", flush=True)
    return {"report": report, "table": table}


@torch.no_grad()
def emoji_demo(out: Path, models: dict, pair: dict, data: str | Path, eval_limit: int | None, rfid: bool,
               rfid_splits: Sequence[str], rfid_limit: int | None, rows: int, progress: bool) -> dict:
    """The emoji pair on ``EMOJI_SPLITS`` of the data set in ``data`` (fetched when missing), and its pictures."""
    from .data import fetch, open_dataset
    from .metrics import InceptionFeatures, iterate_batches
    from .metrics.reference import matching_reference

    root = Path(data)
    if not (root / "captions.jsonl").is_file():
        print(f"fetching the emoji data set into {root} (npm registry) ...", flush=True)
        fetch("emoji", root)
    extractor = InceptionFeatures() if rfid and rfid_splits else None
    size, scores, table = models["textok"].config.image_size, {}, []
    for split in EMOJI_SPLITS:
        here = rfid and split in rfid_splits
        n = min(filter(None, (eval_limit, rfid_limit)), default=None) if here else eval_limit
        print(f"== scoring on {split_label(split)}: PSNR, SSIM, LPIPS{' and rFID' if here else ''} ...", flush=True)
        ref, why = matching_reference(pair["textok"].parent / f"{PAIRS['emoji']}-{split}-inception.npz", root,
                                      split, size, n, extractor) if here else (None, "")
        if here:
            print(f"   the originals' Inception features: {'shipped, same images and network' if ref else why}")
        scores[split] = score_pair(models, str(root), here, split=split, num=n, extractor=extractor, reference=ref,
                                   progress=progress)
        table += metric_rows(f"{split_label(split)}, {scores[split]['textok']['num']} images", scores[split])
    batch = next(iterate_batches(open_dataset(str(root), split=EMOJI_SPLITS[0], image_size=size, train=False),
                                 2 * rows, 2 * rows))
    first = {c: i for i, c in reversed(list(enumerate(batch["captions"])))}  # a caption's first row: distinct first
    keep = (sorted(first.values()) + [i for i in range(len(batch["captions"])) if i not in first.values()])[:rows]
    images, captions = batch["images"][keep], [batch["captions"][i] for i in keep]
    n = len(captions)  # each row's swapped-in caption: the first other caption from half the grid away
    others = [next((c for k in range(n) if (c := captions[(i + n // 2 + k) % n]) != captions[i]), "") for i in range(n)]
    base, tok = models["baseline"], models["textok"]
    cols = {"baseline": base.reconstruct(images), "TexTok": tok.reconstruct(images, captions),
            "TexTok, swapped": tok.reconstruct(images, captions, decode_captions=others)}
    _save(captioned_grid({"original": images, "baseline": cols["baseline"], "TexTok": cols["TexTok"]}, captions),
          out / "reconstructions.png")
    notes = [f"caption: {c}\nswapped: {o}" for c, o in zip(captions, others)]
    _save(captioned_grid({"original": images, **cols}, notes, scale=3, min_width=480), out / "caption_swap.png")
    grid = [{"caption": c, "swapped_caption": o} for c, o in zip(captions, others)]
    return {"report": {"scores": scores, "grid": grid}, "table": table}


def markdown(kind: str, pair: dict, table: list[list[str]], seconds: float) -> str:
    """The table with a sentence saying what was scored, by which models."""
    src = {a: read_source(pair[a]) for a in ARMS}
    folders = ", ".join(f"`{pair[a].name}`" + (f" ({s['steps']} steps)" if (s := src[a]).get("steps") else "")
                        for a in ARMS)
    head = (f"TexTok and its no-text baseline at N = {pair['num_tokens']} token(s) ({folders}). One checkpoint per "
            "arm: a difference below is one sample, not a measured effect; each folder's README says where it came "
            "from.")
    if kind == "scenes":
        head += (" New scenes drawn in memory; 'reads as its caption' is the detector of `textok.metrics.scenes` "
                 "(the originals' column is its ceiling); an edit is shown when the decode shows the edited factor.")
    cols = ["measure", "originals", *ARMS.values()]
    if all(r[1] == "–" for r in table):  # no measure of the originals (emoji): no column for them
        cols, table = [c for i, c in enumerate(cols) if i != 1], [[c for i, c in enumerate(r) if i != 1] for r in table]
    lines = [head, "", f"| {' | '.join(cols)} |", "|---|" + "---:|" * (len(cols) - 1)]
    return "\n".join(lines + [f"| {' | '.join(r)} |" for r in table]) + f"\n\n({seconds:.0f} s)\n"


def demo(kind: str = "scenes", out: str | Path = "demo_out", *, num: int = NUM_SCENES, seed: int = SEED,
         prompts: Sequence[str] = (), rfid: bool = False, threads: int | None = None,
         pretrained: str | Path | None = None, data: str | Path = "data/emoji", eval_limit: int | None = None,
         rfid_splits: Sequence[str] = ("val_unseen",), rfid_limit: int | None = RFID_LIMIT, rows: int = 8,
         progress: bool = True) -> dict:
    """Run the ``kind`` demo (``"scenes"`` or ``"emoji"``) on the pair shipped under ``pretrained`` (default: the
    package's) and write ``out``; returns what ``out/results.json`` holds. Scenes: ``num`` new scenes of each
    kind from ``seed``, ``prompts`` typed captions besides ``PROMPTS``. Emoji: the data set in ``data``,
    ``eval_limit`` images (evenly spaced) per split (all if None), rFID on ``rfid_splits`` on at most
    ``rfid_limit`` images (None or 0: ``eval_limit``)."""
    if kind not in PAIRS:
        raise ValueError(f"unknown demo {kind!r}; choose from {list(PAIRS)}")
    if num < 2 or rows < 1 or eval_limit is not None and eval_limit < 1 or rfid_limit is not None and rfid_limit < 0:
        raise ValueError(f"--num must be >= 2, --rows >= 1, --eval-limit >= 1 and --rfid-limit >= 0, got {num}, "
                         f"{rows}, {eval_limit} and {rfid_limit}")
    if unknown := sorted(set(rfid_splits) - set(EMOJI_SPLITS)):
        raise ValueError(f"rfid_splits: unknown split(s) {unknown}; the demo scores {list(EMOJI_SPLITS)}")
    prompts = list(PROMPTS) + list(prompts)
    for p in prompts:  # a typed caption outside the scenes grammar is refused before any work
        sc.parse_caption(p)
    pair, models = load_pair(kind, pretrained)
    if threads:
        torch.set_num_threads(threads)
    t0, out = time.perf_counter(), Path(out)
    print(f"== the shipped pair: {pair['textok'].name} and {pair['baseline'].name}", flush=True)
    if kind == "scenes":
        done = scenes_demo(out, models, pair, num, seed, prompts, rfid, min(rows, num), progress)
    else:
        done = emoji_demo(out, models, pair, data, eval_limit, rfid, rfid_splits, rfid_limit, rows, progress)
    md = markdown(kind, pair, done["table"], seconds := time.perf_counter() - t0)
    result = {"demo": kind, **done["report"], "table": done["table"],
              "meta": {"pair": {a: pair[a].name for a in ARMS}, "tokens": pair["num_tokens"], "seed": seed, "num": num,
                       "rfid": rfid, "threads": torch.get_num_threads(), "seconds": round(seconds, 1),
                       "source": {a: {k: read_source(pair[a]).get(k) for k in ("run", "steps")} for a in ARMS}}}
    write_text_atomic(out / "results.md", md)
    write_json_atomic(out / "results.json", result)
    print(f"\n{md}\nwrote {out}/: results.md, results.json, " + ", ".join(sorted(p.name for p in out.glob("*.png"))))
    return result
