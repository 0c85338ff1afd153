"""``textok train-tokenizer``: train TexTok or its no-text baseline from a YAML config."""

from __future__ import annotations


def add_training_arguments(p, example_override: str) -> None:
    """The arguments every ``textok train-*`` command shares (one Trainer behind all of them)."""
    p.add_argument("--config", required=True, help="YAML config (see configs/)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help=f"dotted overrides, e.g. {example_override}")
    p.add_argument("--out", default=None, help="run folder (default: runs/<config name>)")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --out")
    p.add_argument("--init-from", default=None, help="start from the weights of a model / run / checkpoint folder")


def register(sub) -> None:
    p = sub.add_parser("train-tokenizer", help="train a TexTok tokenizer (one CPU, one GPU, or `accelerate launch`)")
    add_training_arguments(p, "model.num_tokens=16")
    p.add_argument("--baseline", action="store_true", help="the no-text twin (model.text_in=none), all else identical")
    p.set_defaults(func=_train)


def _train(args) -> int:
    from pathlib import Path

    from ..training import NonFiniteLossError, load_config, train_tokenizer

    cfg = load_config(args.config, args.overrides)
    out = args.out or str(Path("runs") / (Path(args.config).stem + ("-baseline" if args.baseline else "")))
    try:
        result = train_tokenizer(cfg, out, resume=args.resume, init_from=args.init_from, baseline=args.baseline)
    except NonFiniteLossError as e:
        print(f"textok train-tokenizer: {e}")
        return 1
    print(f"trained {result.step} steps in {result.seconds:.0f}s ({result.images_per_second:.1f} images/s, "
          f"{result.nonfinite_total} non-finite steps skipped); model: {result.model_dir}; checkpoint: {result.checkpoint}")
    return 0
