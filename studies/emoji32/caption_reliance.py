"""How much does TexTok's detokenizer rely on the exact caption? (the reproduction study's generation half)

A class-conditional DiT never sees text: its detokenizer decodes the generated tokens with a caption drawn
from the class, not the caption the tokens were encoded with. This measures, on the held-out splits, what
that swap costs a converged tokenizer pair: the baseline, TexTok decoding with each image's own caption,
with another caption of the same class (what the class-conditional pipeline faces) and with a caption of
another class (``textok eval-tokenizer --decode-captions``). "Another caption of the class" three ways: the
next one in sort order (``same-class``: often sharing words with the own caption), one drawn at random
(``same-class-random``: what the pipeline's random draw from its pool does) and, of up to 16, the one that
best explains the image's tokens (``same-class-cycle``: what ``textok sample-fid --caption-choice cycle``
does). If TexTok decoded with a caption of the class reconstructs worse than the baseline, a
class-conditional generator on its tokens starts behind, however well it models them.

    python -m studies.emoji32.caption_reliance --grid               # the shipped N = 4 pair, val and val_unseen
    python -m studies.emoji32.caption_reliance --num 40 --out /tmp/cr.json --no-rfid     # smoke
    python -m studies.emoji32.caption_reliance --baseline none --textok T --out docs/results/reproduction/caption_reliance_n1.json

Writes ``docs/results/reproduction/caption_reliance.json`` (one record per split x arm x decoding; written
per split as it finishes: a rerun with the same tokenizers, --num and --no-rfid measures only the split x decodings
missing, unless ``--force``); ``studies/emoji32/reproduction_report.py`` renders it. ``--grid`` also draws
``docs/img/reproduction_caption_reliance.png`` (original | baseline | TexTok | TexTok with a random caption of the
class | with the cycle-chosen caption of the class | with a caption of another class; the captions beside it in a .txt).
"""

from __future__ import annotations

import argparse
import datetime
import json
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
PRETRAINED = REPO / "src" / "textok" / "pretrained"
OUT = REPO / "docs" / "results" / "reproduction" / "caption_reliance.json"
IMG = REPO / "docs" / "img" / "reproduction_caption_reliance.png"
SPLITS = ("val", "val_unseen")
DECODINGS = ("own", "same-class", "same-class-random", "same-class-cycle", "other-class")


def _rel(path: Path) -> str:
    path = path.resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def measure(split: str, baseline: Path | None, textok: Path, data: Path, num: int | None, rfid: bool,
            batch_size: int, decodings: tuple[str, ...] = DECODINGS) -> list[dict]:
    """The records of one split: the baseline and TexTok x decoding ("own" measures both arms, the others TexTok)."""
    from textok.metrics import InceptionFeatures, dataset_stats, evaluate_tokenizer

    records, t = [], time.time()
    # one Inception network and the originals' statistics once per split, shared by the three evaluations
    extractor = InceptionFeatures() if rfid else None
    reference = dataset_stats(data, num=num, split=split, image_size=32, progress=False,
                              extractor=extractor) if rfid else None
    for decoding in decodings:
        both = decoding == "own" and baseline is not None
        checkpoints, names = ([baseline, textok], ["baseline", "textok"]) if both else ([textok], ["textok"])
        report = evaluate_tokenizer([str(c) for c in checkpoints], data, num=num, split=split, names=names,
                                    batch_size=batch_size, progress=False, rfid=rfid, reference=reference,
                                    extractor=extractor,
                                    decode_captions=None if decoding == "own" else decoding)
        for r in report["results"]:
            records.append({"split": split, "arm": r["name"], "decode": decoding, "num_images": r["num"],
                            "swapped": r["decode_swapped"], "num_tokens": r["tokens"], "rfid": r["rfid"],
                            "psnr": r["psnr"], "ssim": r["ssim"], "lpips": r["lpips"]})
            print(f"{split:10s} {r['name']:8s} {decoding:17s} rFID {r['rfid'] if r['rfid'] is None else round(r['rfid'], 2)}"
                  f"  PSNR {r['psnr']:.2f}  LPIPS {r['lpips']:.4f}  ({r['decode_swapped']} of {r['num']} swapped)",
                  flush=True)
    print(f"{split}: {time.time() - t:.0f} s", flush=True)
    return records


@torch.no_grad()
def grid(baseline: Path, textok: Path, data: Path, out: Path, rows: int = 8) -> Path:
    """``rows`` evenly spaced ``val`` emoji whose class holds another caption: original | baseline | TexTok (own
    caption) | TexTok decoding the same tokens with a random caption of the class (what the class-conditional
    pipeline does by default) | with the caption of the class chosen by cycle error (``--caption-choice cycle``) |
    with a caption of another class; the captions in ``out`` with .txt."""
    from textok import CaptionedTokenizer
    from textok.data import load_text_cache, open_dataset
    from textok.data.transforms import make_grid, to_pil
    from textok.metrics import decode_caption_map

    ds = open_dataset(data, split="val", image_size=32, train=False)
    drawn, pools, other = (decode_caption_map(ds, rule=r) for r in ("same-class-random", "same-class-cycle", "other-class"))
    candidates = [i for i in range(len(ds)) if drawn[ds.eval_caption(i)] != ds.eval_caption(i)]
    picks = [candidates[int(k)] for k in torch.linspace(0, len(candidates) - 1, rows).long()]
    items = [ds[i] for i in picks]
    images = torch.stack([it["image"] for it in items])
    caps = [it["caption"] for it in items]
    base = CaptionedTokenizer.from_pretrained(baseline)
    text = CaptionedTokenizer.from_pretrained(textok)
    text = CaptionedTokenizer(text.model, load_text_cache(data, text.config.text_encoder))  # the study's embeddings
    tokens = text.encode(images, caps)
    chosen = text.choose_captions(tokens, [pools[c] for c in caps])
    cols = [images, base.reconstruct(images)] + [
        text.decode(tokens, c) for c in (caps, [drawn[c] for c in caps], chosen, [other[c] for c in caps])]
    tiles = torch.stack(cols, dim=1).reshape(-1, *images.shape[1:])  # one row per image
    out.parent.mkdir(parents=True, exist_ok=True)
    to_pil(make_grid(tiles, nrow=len(cols))).save(out)
    out.with_suffix(".txt").write_text(
        f"rows: val emoji; columns: original | baseline | TexTok | TexTok decoding the same tokens with a random caption "
        f"of the class | with the caption of the class chosen by cycle error | with a caption of another class "
        f"(N = {text.config.num_tokens}; {_rel(textok)})\n"
        + "\n".join(f"{c}  |  random: {drawn[c]}  |  cycle-chosen: {k}  |  other class: {other[c]}"
                    for c, k in zip(caps, chosen)) + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--baseline", type=lambda v: None if v == "none" else Path(v), default=PRETRAINED / "emoji32-baseline-n4",
                   help="the no-text tokenizer, or 'none' (TexTok only: its baseline measured elsewhere)")
    p.add_argument("--textok", type=Path, default=PRETRAINED / "emoji32-textok-n4")
    p.add_argument("--data", type=Path, default=REPO / "data" / "emoji")
    p.add_argument("--num", type=int, default=None, help="evenly spaced images per split (default: all)")
    p.add_argument("--no-rfid", action="store_true", help="PSNR / SSIM / LPIPS only (smoke)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--force", action="store_true", help="measure again even if --out holds these tokenizers")
    p.add_argument("--grid", type=Path, default=None, nargs="?", const=IMG,
                   help=f"also draw the picture (default {_rel(IMG)}; seconds)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.grid is not None:
        if args.baseline is None:
            p.error("--grid needs --baseline")
        print(f"wrote {grid(args.baseline, args.textok, args.data, args.grid)}")
    from textok.io import write_json_atomic
    from textok import TexTok
    from textok.training.trainer import cpu_name

    settings = {"tokenizers": {"baseline": args.baseline and _rel(args.baseline), "textok": _rel(args.textok)},
                "num": args.num,
                "rfid": not args.no_rfid}
    out = json.loads(args.out.read_text()) if args.out.exists() and not args.force else {}
    if any(out.get(k) != v for k, v in settings.items()):
        out = {}  # other tokenizers or settings: measured again
    records = out.get("records", [])
    seconds = out.get("seconds", 0.0)
    n = TexTok.load_config(args.textok).num_tokens
    pair = f"the {'shipped ' if args.textok.resolve().is_relative_to(PRETRAINED) else ''}N = {n} pair"
    for split in SPLITS:  # each split's records are written as it finishes: a stopped run resumes at the next
        missing = tuple(d for d in DECODINGS if not any(r["split"] == split and r["decode"] == d for r in records))
        if not missing:
            print(f"{split}: in {args.out} already (--force measures again)")
            continue
        t = time.time()
        records += measure(split, args.baseline, args.textok, args.data, args.num, not args.no_rfid, args.batch_size,
                           missing)
        seconds += time.time() - t
        order = {(s, d): i for i, (s, d) in enumerate((s, d) for s in SPLITS for d in DECODINGS)}
        records.sort(key=lambda r: order.get((r["split"], r["decode"]), len(order)))
        command = "python -m studies.emoji32.caption_reliance" + ("" if args.num is None else f" --num {args.num}") + (
            "" if args.out.resolve() == OUT.resolve() else
            f" --baseline {_rel(args.baseline) if args.baseline else 'none'} --textok {_rel(args.textok)} --out {_rel(args.out)}")
        out = {**settings, "pair": pair, "records": records,
               "command": command,
               "cpu": cpu_name(), "threads": args.threads, "seconds": round(seconds, 1),
               "date": datetime.date.today().isoformat(),
               "note": "TexTok encodes every image with its own caption; 'same-class' (next in sort order), "
                       "'same-class-random', 'same-class-cycle' (of up to 16, the lowest cycle error) and 'other-class' "
                       "decode with another caption (textok.metrics.decode_caption_map over the split's own captions)"}
        write_json_atomic(args.out, out)
        print(f"wrote {args.out} ({split})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
