"""How large each text encoder's features are, from the data set's text caches (why the encoder arm has a
LayerNorm variant: the projection's input scale sets how fast the text path learns).

For every cache in ``DATA/text_cache`` (``textok embed-text``): over the real (unpadded) tokens of the same
captions (the full captions of ``--split``, at most ``--num``), the mean L2 norm of a token's feature vector, the
mean over channels of each channel's standard deviation, and the mean absolute value. Writes ``--out`` (JSON) and
prints a Markdown table.

    python -m studies.scenes.encoder_scale --data data/scenes25k --out docs/results/scenes/encoder_scale.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def encoder_scale(data: str | Path, split: str = "val", num: int = 1000) -> dict[str, dict]:
    """{encoder: {width, captions, tokens, norm, channel_std, abs_mean}} of each text cache of ``data``, over the
    first ``num`` full captions of ``split``."""
    from textok.data import open_dataset
    from textok.data.text_cache import load_text_cache

    ds = open_dataset(data, split)
    captions = [ds.eval_caption(i) for i in range(min(num, len(ds)))]
    out = {}
    for path in sorted((Path(data) / "text_cache").glob("*.safetensors")):
        cache = load_text_cache(data, path.stem)
        if cache is None:
            continue
        text = cache(captions)
        e = text.embeddings[text.mask].float()  # [real tokens, C]
        out[cache.name] = {"width": cache.dim, "captions": len(captions), "tokens": int(e.shape[0]),
                           "norm": round(float(e.norm(dim=1).mean()), 4), "channel_std": round(float(e.std(0).mean()), 4),
                           "abs_mean": round(float(e.abs().mean()), 4)}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="data/scenes")
    p.add_argument("--split", default="val", help="whose full captions are read")
    p.add_argument("--num", type=int, default=1000, help="at most this many captions (the first ones)")
    p.add_argument("--out", type=Path, default=None, help="write the numbers here (JSON)")
    args = p.parse_args(argv)
    if not list((Path(args.data) / "text_cache").glob("*.safetensors")):
        raise SystemExit(f"{args.data}: no text cache; run `textok embed-text --data {args.data}` first")
    scales = encoder_scale(args.data, args.split, args.num)
    print("| encoder | width | captions (tokens) | mean token norm | mean channel std | mean |x| |\n|---|---|---|---|---|---|")
    for name, s in scales.items():
        print(f"| {name} | {s['width']} | {s['captions']} ({s['tokens']}) | {s['norm']:.3f} | {s['channel_std']:.4f} | {s['abs_mean']:.4f} |")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"data": str(args.data), "split": args.split, "encoders": scales}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
