"""FID Inception throughput, and the cost of a full ``eval-tokenizer`` run.

    python benchmarks/bench_inception.py                              # Inception images/s, 64 px inputs
    python benchmarks/bench_inception.py --device cuda --num 512 --batch 64
    python benchmarks/bench_inception.py --eval-data data/emoji       # + eval-tokenizer on the val split

Inception: the pinned TF-Inception pool3 TorchScript on random uint8 images of ``--size`` px
(resized to 299 inside, as in evaluation); one warm-up batch, then ``--num`` images timed.

eval-tokenizer: ``evaluate_tokenizer`` with ``--checkpoint`` folders, or (without any) two
freshly initialised ``--preset`` models (text_in both / none), on the first ``--eval-num``
images of ``--split`` (all by default). Random weights: the timing is the protocol's cost, the
metric values mean nothing. Prints wall time per checkpoint and in total, and the report.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import tempfile
import time
from pathlib import Path

import torch


def bench_inception(num: int, batch: int, size: int, device: str, channels_last: bool = True) -> float:
    from textok.metrics import InceptionFeatures

    net = InceptionFeatures(device=device, channels_last=channels_last)
    images = torch.randint(0, 256, (num, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    net(images[:batch])  # warm-up
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    sync()
    start = time.perf_counter()
    for i in range(0, num, batch):
        net(images[i : i + batch])
    sync()
    return num / (time.perf_counter() - start)


def bench_eval(data: str, checkpoints: list[str], preset: str, num: int | None, split: str, batch: int,
               device: str, out: str) -> dict:
    import dataclasses

    from textok import TexTok, TexTokConfig
    from textok.metrics import evaluate_tokenizer

    with tempfile.TemporaryDirectory() as tmp:
        if not checkpoints:
            torch.manual_seed(0)
            for text_in in ("both", "none"):
                cfg = dataclasses.replace(TexTokConfig.from_preset(preset), text_in=text_in)
                checkpoints.append(str(TexTok(cfg).save_pretrained(Path(tmp) / f"{preset}-{text_in}")))
        start = time.perf_counter()
        report = evaluate_tokenizer(checkpoints, data, num=num, split=split, batch_size=batch, device=device,
                                    out=out, progress=False)
        report["total_seconds"] = time.perf_counter() - start
    return report


def fid_check(data: str, num: int, device: str) -> None:
    """The fast path may change an FID by < 0.1: FID(train, held-out) with both layouts on ``num`` images each."""
    import numpy as np

    from textok.data import open_dataset
    from textok.metrics import InceptionFeatures, feature_stats, frechet_distance, iterate_batches

    def images(split_names):
        out = []
        for split in split_names:
            ds = open_dataset(data, split=split, image_size=32)
            out += [b["images"] for b in iterate_batches(ds, None, 100)]
        x = torch.cat(out)
        return x[torch.linspace(0, len(x) - 1, num).long()]

    a, b = images(["train"]), images(["val", "val_unseen"])
    results = {}
    for channels_last in (True, False):
        net = InceptionFeatures(device=device, channels_last=channels_last)
        start = time.perf_counter()
        fa = np.concatenate([net(a[i : i + 50]).double().cpu().numpy() for i in range(0, num, 50)])
        fb = np.concatenate([net(b[i : i + 50]).double().cpu().numpy() for i in range(0, num, 50)])
        seconds = time.perf_counter() - start
        results[channels_last] = (frechet_distance(*feature_stats(fa), *feature_stats(fb)), fa, fb, seconds)
    (f1, a1, b1, s1), (f0, a0, b0, s0) = results[True], results[False]
    diff = max(np.abs(a1 - a0).max(), np.abs(b1 - b0).max())
    print(f"FID check ({num} train vs {num} val+val_unseen emoji, 32 px): channels-last {f1:.4f} ({2 * num / s1:.2f} img/s), "
          f"NCHW reference {f0:.4f} ({2 * num / s0:.2f} img/s); |difference| {abs(f1 - f0):.2e}; "
          f"largest feature difference {diff:.2e}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--num", type=int, default=64)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--layouts", action="store_true",
                   help="also time the NCHW reference path (channels_last=False) and print the speed-up and the "
                        "largest feature difference")
    p.add_argument("--eval-data", default=None, help="dataset folder: also time eval-tokenizer on it")
    p.add_argument("--checkpoint", action="append", default=[])
    p.add_argument("--preset", default="textok-mini-64")
    p.add_argument("--split", default="val")
    p.add_argument("--eval-num", type=int, default=None)
    p.add_argument("--eval-batch", type=int, default=32)
    p.add_argument("--out", default="bench_eval_out")
    p.add_argument("--fid-check", default=None, metavar="DATA",
                   help="dataset folder: FID of two 1,000-image sets (train vs val + val_unseen, 32 px) with the "
                        "channels-last fast path and with the NCHW reference path, and the features' largest difference")
    p.add_argument("--fid-num", type=int, default=1000)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    print(f"# {datetime.date.today()} | {platform.processor() or platform.machine()} | torch {torch.__version__} "
          f"| device {args.device} | {torch.get_num_threads()} CPU threads")
    ips = bench_inception(args.num, args.batch, args.size, args.device)
    print(f"Inception pool3: {ips:.2f} images/s ({args.num} images of {args.size} px -> 299, batch {args.batch})")
    if args.layouts:
        from textok.metrics import InceptionFeatures

        ref = bench_inception(args.num, args.batch, args.size, args.device, channels_last=False)
        net = InceptionFeatures(device=args.device)
        x = torch.randint(0, 256, (min(args.num, args.batch), 3, args.size, args.size), dtype=torch.uint8)
        fast = net(x)
        net.channels_last = False
        diff = (fast - net(x)).abs().max().item()
        print(f"Inception pool3 NCHW (reference path): {ref:.2f} images/s; channels-last speed-up {ips / ref:.2f}x; "
              f"max feature difference {diff:.2e}")
    if args.fid_check:
        fid_check(args.fid_check, args.fid_num, args.device)
    if args.eval_data:
        report = bench_eval(args.eval_data, list(args.checkpoint), args.preset, args.eval_num, args.split,
                            args.eval_batch, args.device, args.out)
        for r in report["results"]:
            print(f"eval-tokenizer {r['name']}: {r['num']} images in {r['seconds']:.1f} s ({r['images_per_second']:.2f} img/s)")
        print(f"eval-tokenizer total: {report['total_seconds']:.1f} s for {len(report['results'])} checkpoints")
        print(report["markdown"])


if __name__ == "__main__":
    main()
