"""Caption dropout vs memorisation: score tokenizers on the emoji ``val`` and ``val_unseen`` splits.

    textok demo --out demo_out                                   # baseline + TexTok (no dropout)
    textok train-tokenizer --config configs/emoji64_textok.yaml data.caption_dropout=0.1 --out runs/capdrop10
    python studies/emoji32/caption_dropout.py baseline=demo_out/baseline/model \
        textok=demo_out/textok/model textok_capdrop10=runs/capdrop10/model [--rfid]

Uses the demo's own reconstruction and scoring (same crops, captions, metrics), so the rows
are comparable with the demo's table. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from textok import TexTok
from textok.demo import SPLITS, reconstruct_split, score


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", help="NAME=MODEL_DIR")
    ap.add_argument("--data", default="data/emoji")
    ap.add_argument("--rfid", action="store_true")
    ap.add_argument("--limit", type=int, default=None)
    args = ap.parse_args(argv)
    models = {}
    for spec in args.models:
        name, _, path = spec.partition("=")
        models[name] = TexTok.from_pretrained(path).eval()
    print(f"| split | model | PSNR (dB) ↑ | SSIM ↑ | LPIPS ↓ |{' rFID ↓ |' if args.rfid else ''}")
    print(f"|---|---|---:|---:|---:|{'---:|' if args.rfid else ''}")
    with torch.no_grad():
        for split in SPLITS:
            images, recs, _ = reconstruct_split(models, Path(args.data), split, args.limit)
            for name, r in score(images, recs, args.rfid).items():
                extra = f" {r['rfid']:.2f} |" if args.rfid else ""
                print(f"| {split} ({len(images)}) | {name} | {r['psnr']:.2f} | {r['ssim']:.4f} | {r['lpips']:.4f} |{extra}", flush=True)


if __name__ == "__main__":
    main()
