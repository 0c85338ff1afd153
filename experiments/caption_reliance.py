"""How much does TexTok's detokenizer rely on the exact caption? (the reproduction study's generation half)

A class-conditional DiT never sees text: its detokenizer decodes the generated tokens with a caption drawn
from the class, not the caption the tokens were encoded with. This measures, on the held-out splits, what
that swap costs a converged tokenizer pair: the baseline, TexTok decoding with each image's own caption,
with another caption of the same class (what the class-conditional pipeline faces) and with a caption of
another class (``textok eval-tokenizer --decode-captions``). If TexTok decoded with a caption of the class
reconstructs worse than the baseline, a class-conditional generator on its tokens starts behind, however
well it models them.

    python experiments/caption_reliance.py                      # the shipped N = 4 pair, val and val_unseen
    python experiments/caption_reliance.py --num 40 --out /tmp/cr.json --no-rfid     # smoke

Writes ``docs/results/reproduction/caption_reliance.json`` (one record per split x arm x decoding; skipped
when it exists with the same tokenizers, --num and --no-rfid, unless ``--force``); ``experiments/reproduction_report.py`` renders it.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
PRETRAINED = REPO / "src" / "textok" / "pretrained"
OUT = REPO / "docs" / "results" / "reproduction" / "caption_reliance.json"
SPLITS = ("val", "val_unseen")
DECODINGS = ("own", "same-class", "other-class")


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _rel(path: Path) -> str:
    path = path.resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def measure(baseline: Path, textok: Path, data: Path, num: int | None, rfid: bool, batch_size: int) -> list[dict]:
    """One record per split x (baseline, TexTok x decoding)."""
    from textok.metrics import dataset_stats, evaluate_tokenizer

    records = []
    for split in SPLITS:
        t = time.time()
        # the originals' Inception statistics once per split, shared by the three evaluations
        reference = dataset_stats(data, num=num, split=split, image_size=32, progress=False) if rfid else None
        for decoding in DECODINGS:
            checkpoints, names = ([baseline, textok], ["baseline", "textok"]) if decoding == "own" else ([textok], ["textok"])
            report = evaluate_tokenizer([str(c) for c in checkpoints], data, num=num, split=split, names=names,
                                        batch_size=batch_size, progress=False, rfid=rfid, reference=reference,
                                        decode_captions=None if decoding == "own" else decoding)
            for r in report["results"]:
                records.append({"split": split, "arm": r["name"], "decode": decoding, "num_images": r["num"],
                                "swapped": r["decode_swapped"], "num_tokens": r["tokens"], "rfid": r["rfid"],
                                "psnr": r["psnr"], "ssim": r["ssim"], "lpips": r["lpips"]})
                print(f"{split:10s} {r['name']:8s} {decoding:11s} rFID {r['rfid'] if r['rfid'] is None else round(r['rfid'], 2)}"
                      f"  PSNR {r['psnr']:.2f}  LPIPS {r['lpips']:.4f}  ({r['decode_swapped']} of {r['num']} swapped)",
                      flush=True)
        print(f"{split}: {time.time() - t:.0f} s", flush=True)
    return records


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--baseline", type=Path, default=PRETRAINED / "emoji32-baseline-n4")
    p.add_argument("--textok", type=Path, default=PRETRAINED / "emoji32-textok-n4")
    p.add_argument("--data", type=Path, default=REPO / "data" / "emoji")
    p.add_argument("--num", type=int, default=None, help="evenly spaced images per split (default: all)")
    p.add_argument("--no-rfid", action="store_true", help="PSNR / SSIM / LPIPS only (smoke)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--force", action="store_true", help="measure again even if --out holds these tokenizers")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    tokenizers = {"baseline": _rel(args.baseline), "textok": _rel(args.textok)}
    if args.out.exists() and not args.force:
        done = json.loads(args.out.read_text())
        if done.get("tokenizers") == tokenizers and done.get("num") == args.num and done.get("rfid") == (not args.no_rfid):
            print(f"{args.out} holds these tokenizers already (--force measures again)")
            return 0
    t = time.time()
    records = measure(args.baseline, args.textok, args.data, args.num, not args.no_rfid, args.batch_size)
    out = {"tokenizers": tokenizers, "num": args.num, "rfid": not args.no_rfid, "records": records,
           "command": "python experiments/caption_reliance.py" + ("" if args.num is None else f" --num {args.num}"),
           "cpu": cpu_name(), "threads": args.threads, "seconds": round(time.time() - t, 1),
           "date": datetime.date.today().isoformat(),
           "note": "TexTok encodes every image with its own caption; 'same-class' / 'other-class' decode with "
                   "another caption (textok.metrics.decode_caption_map over the split's own captions)"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(out, indent=1) + "\n")
    tmp.replace(args.out)
    print(f"wrote {args.out} ({out['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
