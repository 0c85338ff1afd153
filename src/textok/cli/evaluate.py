"""``textok fid-stats``, ``textok eval-tokenizer`` and ``textok eval-generation`` (and ``textok eval-adherence``,
from ``textok.cli.adherence``)."""

from __future__ import annotations

import json


def register(sub) -> None:
    from ..data.captions import CAPTION_VARIANTS

    p = sub.add_parser("fid-stats", help="Inception reference statistics of a data set (ADM .npz: mu, sigma)")
    p.add_argument("--data", required=True, help="dataset folder (any format textok.data reads)")
    p.add_argument("--out", required=True, help="output .npz")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file (default: refuse)")
    p.add_argument("--split", default="train")
    p.add_argument("--image-size", type=int, default=64, help="centre-crop size, as in evaluation (default 64)")
    p.add_argument("--num", type=int, default=None, help="N evenly spaced images (default: all)")
    p.add_argument("--no-features", action="store_true",
                   help="store only mu/sigma (no per-image features: no precision/recall against this file)")
    p.add_argument("--features-only", action="store_true",
                   help="store only the per-image features (mu/sigma are recomputed on load): the compact form of "
                        "a small reference set, e.g. to ship beside a checkpoint; ADM's evaluator cannot read it")
    p.add_argument("--dtype", default="float32", choices=["float32", "float16"],
                   help="precision of the stored features (default float32)")
    _common(p, batch=50)
    p.set_defaults(func=_fid_stats)

    p = sub.add_parser("eval-tokenizer", help="rFID, PSNR, SSIM, LPIPS (rIS) of tokenizer checkpoints, side by side")
    p.add_argument("--checkpoint", action="append", required=True,
                   help="TexTok folder or Hub repo id (repeat to compare)")
    p.add_argument("--name", action="append", default=[], help="display name per checkpoint (repeat, in order)")
    p.add_argument("--data", required=True, help="dataset folder")
    p.add_argument("--split", default="val")
    p.add_argument("--num", type=int, default=None, help="N evenly spaced images of the split (default: all)")
    p.add_argument("--caption-variant", default="full",
                   help=f"the captions' form, as the model was trained (data.caption_variant): "
                        f"{', '.join(CAPTION_VARIANTS)} or a caption_<variant> field's name")
    p.add_argument("--out", default="eval_out", help="folder for eval_tokenizer.{md,json} and reconstructions.png")
    p.add_argument("--inception-logits", default=None,
                   help="torch-fidelity Inception weights (.pth) for rIS (default: found in the cache, else no rIS)")
    p.add_argument("--no-lpips", action="store_true")
    p.add_argument("--no-rfid", action="store_true",
                   help="skip the Inception network (PSNR / SSIM / LPIPS only; much faster on a CPU)")
    p.add_argument("--reference", default=None,
                   help="the originals' statistics (.npz of `textok fid-stats` on the same split and size, with the "
                        "same --num, or on the whole split with its features: those serve any --num): skips their "
                        "Inception pass; refused if they come from other images or another network")
    p.add_argument("--decode-captions", default=None, metavar="RULE|FILE",
                   help="decode each image with another caption than it was encoded with: same-class (the next "
                        "caption of its class in sort order), same-class-random (one drawn at random), "
                        "same-class-cycle (of up to 16 captions of its class, the one that best explains the "
                        "image's tokens), other-class, or a JSON file caption -> caption (or -> a list of candidate "
                        "captions); measures how much the detokenizer relies on the caption")
    _common(p, batch=32)
    p.set_defaults(func=_eval_tokenizer)

    p = sub.add_parser("eval-generation", help="gFID, precision/recall (IS, CLIP score) of an ADM sample .npz")
    p.add_argument("--samples", required=True, help="ADM .npz with arr_0 uint8 [N, H, W, 3]")
    p.add_argument("--ref", required=True, help="statistics .npz (textok fid-stats or ADM's reference batch)")
    p.add_argument("--captions", default=None, help=".txt (one per line) or .jsonl captions, for the CLIP score")
    p.add_argument("--clip-model", default=None, help="local Hugging Face CLIP model folder")
    p.add_argument("--inception-logits", default=None,
                   help="torch-fidelity Inception weights (.pth) for IS (default: found in the cache, else no IS)")
    p.add_argument("--out", default=None, help="folder for eval_generation.{md,json}")
    _common(p, batch=50)
    p.set_defaults(func=_eval_generation)

    from .adherence import register as register_adherence  # textok eval-adherence (scenes)

    register_adherence(sub)


def _common(p, batch: int) -> None:
    p.add_argument("--batch-size", type=int, default=batch)
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print the JSON report instead of Markdown")


def _positive(value, what: str) -> None:
    if value is not None and value < 1:
        raise ValueError(f"{what} must be a positive integer, got {value}")


def _classifier(path):
    from ..metrics.inception_score import find_classifier_weights

    return path or find_classifier_weights()


def _fid_stats(args) -> int:
    from ..metrics import dataset_stats, save_stats

    _positive(args.num, "--num")
    _positive(args.batch_size, "--batch-size")
    if args.features_only and args.no_features:
        raise ValueError("--features-only and --no-features exclude each other")
    from ..io import check_outputs

    check_outputs([args.out], overwrite=args.overwrite)
    stats = dataset_stats(args.data, num=args.num, split=args.split, image_size=args.image_size,
                          batch_size=args.batch_size, device=args.device, keep_features=not args.no_features,
                          progress=not args.no_progress)
    path = save_stats(args.out, stats, moments=not args.features_only, features_dtype=args.dtype)
    what = f"{args.dtype} features" if args.features_only else "mu/sigma"
    print(f"wrote {path}: {what} of {stats.num} images ({args.split}, {args.image_size} px)")
    return 0


def _eval_tokenizer(args) -> int:
    from ..metrics import TokenizerEvalSettings, evaluate_tokenizer

    _positive(args.num, "--num")
    _positive(args.batch_size, "--batch-size")
    settings = TokenizerEvalSettings(split=args.split, num=args.num, batch_size=args.batch_size, device=args.device,
                                     caption_variant=args.caption_variant, names=args.name or None,
                                     lpips=not args.no_lpips, rfid=not args.no_rfid,
                                     inception_logits=_classifier(args.inception_logits),
                                     decode_captions=args.decode_captions, progress=not args.no_progress)
    report = evaluate_tokenizer(args.checkpoint, args.data, settings, out=args.out, reference=args.reference)
    print(json.dumps(report, indent=2) if args.json else report["markdown"])
    print(f"wrote {args.out}/eval_tokenizer.md, eval_tokenizer.json, reconstructions.png")
    return 0


def _eval_generation(args) -> int:
    from ..metrics import evaluate_generation

    _positive(args.batch_size, "--batch-size")
    report = evaluate_generation(args.samples, args.ref, captions=args.captions, clip_model=args.clip_model,
                                 inception_logits=_classifier(args.inception_logits), batch_size=args.batch_size,
                                 device=args.device, out=args.out, progress=not args.no_progress)
    print(json.dumps(report, indent=2) if args.json else report["markdown"])
    return 0
