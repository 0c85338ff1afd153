"""``textok eval-adherence``: does each image show what its scenes caption says (``textok.metrics.scenes``)?"""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("eval-adherence",
                       help="prompt adherence on the procedural scenes: background, each object's cell, colour, shape "
                            "and size, empty cells, exact scene")
    p.add_argument("images",
                   help="a folder of PNGs named as the split's files (the data set's own images/<split> folder gives "
                        "the ceiling), or an .npz with arr_0 uint8 [N, H, W, 3] in the split's order "
                        "(textok sample-fid --prompts with the split's captions, one per line)")
    p.add_argument("--data", required=True, help="scenes data set folder (textok data fetch scenes)")
    p.add_argument("--split", default="val", help="the split whose captions the images answer (default val)")
    p.add_argument("--num", type=int, default=None, help="score only the first N captions of the split")
    p.add_argument("--shift", type=int, default=0, metavar="K",
                   help="pair image i with caption i + K (cyclic): with K = 1 on real renders, the floor "
                        "(a perfect reader's rates on the same pairing are printed beside it)")
    p.add_argument("--json", default=None, metavar="OUT",
                   help="also write the report (summary and per-image factors) to this JSON file")
    p.set_defaults(func=_eval_adherence)


def _eval_adherence(args) -> int:
    from ..io import write_json_atomic
    from ..metrics.scenes import evaluate_adherence

    report = evaluate_adherence(args.images, args.data, split=args.split, num=args.num, shift=args.shift)
    markdown = report.pop("markdown")
    print(markdown)
    if args.json:
        write_json_atomic(args.json, report)
        print(f"wrote {args.json}")
    return 0
