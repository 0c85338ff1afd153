"""``textok encode-dataset``, ``textok train-dit``, ``textok sample`` and ``textok sample-fid``."""

from __future__ import annotations

from .train import add_training_arguments


def register(sub) -> None:
    from ..latents import STORES

    p = sub.add_parser("encode-dataset", help="encode a data set once into a latent cache for DiT training (resumable)")
    p.add_argument("--checkpoint", required=True, help="TexTok folder")
    p.add_argument("--data", required=True,
                   help="data set folder (textok data fetch ...), or WebDataset shards: a shard folder, a .tar, or a "
                        "pattern such as 'data/train-{000000..000127}.tar'")
    p.add_argument("--out", required=True, help="cache folder (rerun the same command to resume)")
    p.add_argument("--split", default="train")
    p.add_argument("--store", default="mode", choices=list(STORES),
                   help="; ".join(f"{name}: {about}" for name, about in STORES.items()))
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--shard-size", type=int, default=4096, help="images per shard file")
    p.add_argument("--max-images", type=int, default=None,
                   help="encode N images evenly spread over the split (image floor(i * total / N)), not the first N")
    p.add_argument("--num-workers", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=_encode)

    p = sub.add_parser("train-dit", help="train a DiT / DiT-T2I on a latent cache (one CPU, one GPU, or `accelerate launch`)")
    add_training_arguments(p, "schedule.max_steps=1000")
    p.set_defaults(func=_train)

    p = sub.add_parser("sample", help="generate images with a trained DiT + TexTok (a grid)")
    p.add_argument("--checkpoint", required=True, help="generation folder (<run>/model from train-dit)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--class", dest="class_id", type=int, default=None, help="class label (class-conditional DiT)")
    group.add_argument("--prompt", default=None, help="text prompt (DiT-T2I)")
    _sampling_args(p)
    p.add_argument("--num", type=int, default=16)
    p.add_argument("--out", required=True, help="grid image (.png)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file (default: refuse)")
    p.add_argument("--nrow", type=int, default=None)
    p.set_defaults(func=_sample)

    p = sub.add_parser("sample-fid", help="class-balanced samples in the ADM .npz layout (shards over `accelerate launch`)")
    p.add_argument("--checkpoint", required=True, help="generation folder (<run>/model from train-dit)")
    p.add_argument("--num", type=int, required=True, help="number of samples (FID-50k: 50000)")
    p.add_argument("--out", required=True, help=".npz file")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file (default: refuse)")
    p.add_argument("--batch-size", type=int, default=32, help="per batch; the seed of batch b is derived from (seed, b)")
    p.add_argument("--prompts", default=None, help="DiT-T2I: a text file, one prompt per line (cycled)")
    _sampling_args(p, device_default=None)
    p.set_defaults(func=_sample_fid)


def _sampling_args(p, device_default: str | None = "cpu") -> None:
    from ..diffusion import SAMPLERS

    defaults = ", ".join(f"{s.default_steps} {name}" for name, s in SAMPLERS.items())
    p.add_argument("--cfg", type=float, default=None, help="classifier-free guidance scale (1 = none; default: the model's)")
    p.add_argument("--steps", type=int, default=None, help=f"sampler steps (default: the model's, else {defaults})")
    p.add_argument("--sampler", default=None, choices=list(SAMPLERS),
                   help="default: the model's; " + "; ".join(f"{name}: {s.objective} models" for name, s in SAMPLERS.items()))
    p.add_argument("--seed", type=int, default=0, help="same seed, same images")
    p.add_argument("--device", default=device_default, help="cpu, cuda, ... (sample-fid: the process's accelerator)")
    p.add_argument("--text-data", default=None, metavar="DATA",
                   help="a data set folder: embed the prompts and captions its text cache holds from the cache, as "
                        "training did (the text encoder only for others)")
    p.add_argument("--caption-pool", default=None, metavar="JSON",
                   help="class-conditional: the captions the detokenizer draws from (class name -> captions), "
                        "instead of the pool recorded with the model")
    p.add_argument("--caption-choice", default=None, choices=["random", "cycle"],
                   help="class-conditional: how the detokenizer's caption is taken from the pool: random (a draw) or "
                        "cycle (the pool caption that best explains the sampled tokens; costs one decode + encode per "
                        "candidate); default: the model's (random)")


def _encode(args) -> int:
    from ..latents import encode_dataset

    out = encode_dataset(args.checkpoint, args.data, args.out, split=args.split, batch_size=args.batch_size,
                         shard_size=args.shard_size, store=args.store, device=args.device, max_images=args.max_images,
                         num_workers=args.num_workers)
    from ..latents import LatentCache

    cache = LatentCache(out)
    skipped = cache.meta["num_images"] - len(cache)  # bad images are skipped, never replaced
    print(f"cached {len(cache)} images as [{cache.meta['num_tokens']}, {cache.meta['token_dim']}] tokens "
          f"({cache.store}) in {out}" + (f"; {skipped} bad image(s) skipped" if skipped else ""))
    return 0


def _train(args) -> int:
    from pathlib import Path

    from ..training import NonFiniteLossError
    from ..training.dit_task import load_dit_config, train_dit

    cfg = load_dit_config(args.config, args.overrides)
    out = args.out or str(Path("runs") / Path(args.config).stem)
    try:
        result = train_dit(cfg, out, resume=args.resume, init_from=args.init_from)
    except NonFiniteLossError as e:
        print(f"textok train-dit: {e}")
        return 1
    print(f"trained {result.step} steps in {result.seconds:.0f}s ({result.images_per_second:.1f} latents/s); "
          f"generation folder: {result.model_dir}; checkpoint: {result.checkpoint}")
    return 0


def _sampling_fields(args) -> dict:
    """The ``SamplingSettings`` fields of the flags ``_sampling_args`` adds (shared by sample and sample-fid)."""
    return dict(cfg_scale=args.cfg, steps=args.steps, sampler=args.sampler, seed=args.seed,
                caption_choice=args.caption_choice)


def _sample(args) -> int:
    from ..generation import SampleSettings, sample
    from ..io import check_outputs

    check_outputs([args.out], overwrite=args.overwrite)
    settings = SampleSettings(class_id=args.class_id, prompt=args.prompt, num=args.num, **_sampling_fields(args))
    images = sample(args.checkpoint, settings, out=args.out, nrow=args.nrow, device=args.device, progress=True,
                    text_data=args.text_data, caption_pool=args.caption_pool)
    print(f"sampled {images.shape[0]} image(s) at {images.shape[-1]}px -> {args.out}")
    return 0


def _sample_fid(args) -> int:
    from pathlib import Path

    from ..generation import FIDSamplingSettings, sample_fid
    from ..io import check_outputs

    check_outputs([args.out], inputs=[args.prompts] if args.prompts else [], overwrite=args.overwrite)
    prompts = None
    if args.prompts:
        path = Path(args.prompts)
        if not path.is_file():
            raise FileNotFoundError(f"--prompts: {path} does not exist")
        prompts = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        if not prompts:
            raise ValueError(f"--prompts: {path} holds no prompts")
    settings = FIDSamplingSettings(batch_size=args.batch_size, prompts=prompts, **_sampling_fields(args))
    out = sample_fid(args.checkpoint, args.num, args.out, settings, device=args.device, text_data=args.text_data,
                     caption_pool=args.caption_pool)
    if out is not None:
        print(f"wrote {args.num} samples to {out}")
    return 0
