"""Caption dropout vs memorisation: score tokenizers on the emoji ``val_unseen`` (new emoji)
and ``val`` (recall: other renderings of training emoji) splits.

    textok train-tokenizer --config configs/emoji64_textok.yaml --baseline --out runs/baseline
    textok train-tokenizer --config configs/emoji64_textok.yaml --out runs/textok          # no dropout
    textok train-tokenizer --config configs/emoji64_textok.yaml data.caption_dropout=0.1 --out runs/capdrop10
    python -m studies.emoji32.caption_dropout baseline=runs/baseline/model \
        textok=runs/textok/model textok_capdrop10=runs/capdrop10/model [--rfid]

Scores every model with ``textok.metrics.evaluate_tokenizer`` (the library's protocol: same
crops, captions and metrics as ``textok demo`` and ``textok eval-tokenizer``), new emoji first.
Prints a Markdown table.
"""

from __future__ import annotations

import argparse

from textok.metrics import evaluate_tokenizer

SPLITS = ("val_unseen", "val")  # new emoji first; val re-renders training emoji (a recall test)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", help="NAME=MODEL_DIR")
    ap.add_argument("--data", default="data/emoji")
    ap.add_argument("--rfid", action="store_true")
    ap.add_argument("--limit", type=int, default=None)
    args = ap.parse_args(argv)
    names, paths = zip(*(spec.partition("=")[::2] for spec in args.models))
    print(f"| split | model | PSNR (dB) ↑ | SSIM ↑ | LPIPS ↓ |{' rFID ↓ |' if args.rfid else ''}")
    print(f"|---|---|---:|---:|---:|{'---:|' if args.rfid else ''}")
    for split in SPLITS:
        report = evaluate_tokenizer(list(paths), args.data, num=args.limit, split=split, names=list(names),
                                    rfid=args.rfid, grid_images=0)
        for r in report["results"]:
            extra = f" {r['rfid']:.2f} |" if args.rfid else ""
            print(f"| {split} ({r['num']}) | {r['name']} | {r['psnr']:.2f} | {r['ssim']:.4f} | {r['lpips']:.4f} |{extra}",
                  flush=True)


if __name__ == "__main__":
    main()
