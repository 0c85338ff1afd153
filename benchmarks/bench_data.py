"""Data loading speed: WebDataset shards (the training stream) vs an image folder.

    python benchmarks/bench_data.py                                   # synthetic JPEGs, 64 and 256 px
    python benchmarks/bench_data.py --images 4096 --workers 0,1,2,4 --threads 1
    python benchmarks/bench_data.py --data data/emoji --sizes 64      # a real folder data set
    python benchmarks/bench_data.py --images 16 --sizes 32 --workers 0                   # smoke run

For each crop size and number of DataLoader workers it reads the same images (a) from the
folder, through ``open_dataset`` + a shuffling ``DataLoader`` (what the trainer does for
folders), and (b) from tar shards written from that folder by ``write_shards``, through the
training stream (``textok.data.stream.ShardStream``: shuffle buffer, random crop). Decoding and
cropping are included; the model is not. Prints images/s and images/s per worker (0 workers:
the main process reads) as a Markdown table.

Synthetic data (default): ``--images`` JPEGs per size with smooth content plus noise (quality
90), side 1.25 x the crop, like resized ImageNet images; ``--data DIR`` uses a folder data set
instead (its images must be at least the crop size).
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def synthetic_folder(root: Path, n: int, side: int, seed: int = 0) -> Path:
    from PIL import Image

    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:side, 0:side] / side
    lines = []
    for i in range(n):
        a, b, c = rng.random(3) * 6
        base = np.stack([np.sin(a * xx + b * yy), np.cos(b * xx - c * yy), np.sin(c * xx * yy + a)], -1)
        arr = ((base * 0.4 + 0.5 + rng.normal(0, 0.08, base.shape)) * 255).clip(0, 255).astype(np.uint8)
        Image.fromarray(arr).save(root / f"{i:06d}.jpg", quality=90)
        lines.append(json.dumps({"file": f"{i:06d}.jpg", "caption": f"synthetic image {i}", "label": i % 10}))
    (root / "captions.jsonl").write_text("\n".join(lines) + "\n")
    return root


def rate(loader_iter, images: int, batch: int) -> float:
    """Images per second to draw ``images`` images (after one warm-up batch)."""
    next(loader_iter)
    done, t0 = 0, time.perf_counter()
    while done < images:
        b = next(loader_iter)
        done += b["images"].shape[0]
    return done / (time.perf_counter() - t0)


def folder_rate(root: Path, size: int, workers: int, batch: int, images: int) -> float:
    from textok.data import collate, open_dataset

    ds = open_dataset(root, "train", image_size=size, train=True)
    sampler = torch.utils.data.RandomSampler(ds, replacement=True, num_samples=10**9,
                                             generator=torch.Generator().manual_seed(0))
    loader = torch.utils.data.DataLoader(ds, batch_size=batch, sampler=sampler, num_workers=workers, collate_fn=collate)
    return rate(iter(loader), images, batch)


def shard_rate(shards: Path, size: int, workers: int, batch: int, images: int, buffer: int) -> float:
    from textok.data.stream import open_stream

    stream = open_stream(shards, "train", image_size=size, train=True, shuffle_buffer=buffer)
    stream.configure(rank=0, world=1, slots=max(1, workers), micro=batch)
    loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=workers)
    return rate(iter(loader), images, batch)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=None, help="a folder data set (default: synthetic JPEGs)")
    p.add_argument("--images", type=int, default=2048, help="images read per measurement (and synthetic images)")
    p.add_argument("--sizes", default="64,256", help="crop sizes")
    p.add_argument("--workers", default="0,1,2", help="DataLoader worker counts")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--samples-per-shard", type=int, default=1000)
    p.add_argument("--shuffle-buffer", type=int, default=1000)
    p.add_argument("--threads", type=int, default=1, help="torch threads of each process")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    from textok.data import write_shards

    sizes = [int(s) for s in args.sizes.split(",")]
    workers = [int(w) for w in args.workers.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            folder = Path(args.data) if args.data else synthetic_folder(Path(tmp) / f"folder{size}", args.images,
                                                                          int(size * 1.25))
            shards = Path(tmp) / f"shards{size}"
            write_shards(folder, shards, splits=["train"], samples_per_shard=args.samples_per_shard)
            n = args.images  # both loaders are infinite: the same number of images from each
            for w in workers:
                for name, fn in (("folder", lambda: folder_rate(folder, size, w, args.batch, n)),
                                 ("shards", lambda: shard_rate(shards, size, w, args.batch, n, args.shuffle_buffer))):
                    ips = fn()
                    rows.append((size, name, w, ips, ips / max(1, w)))
                    print(f"  {size} px {name:6s} workers={w}: {ips:8.1f} images/s", flush=True)
    print(f"\n{datetime.date.today()}, {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{args.threads} thread(s) per process, batch {args.batch}, {args.samples_per_shard} samples/shard, "
          f"shuffle buffer {args.shuffle_buffer}, {'synthetic JPEGs' if not args.data else args.data}\n")
    print("| crop | source | workers | images/s | images/s per worker |")
    print("|---|---|---|---|---|")
    for size, name, w, ips, per in rows:
        print(f"| {size} px | {name} | {w} | {ips:.1f} | {per:.1f} |")


if __name__ == "__main__":
    main()
