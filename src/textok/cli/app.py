"""``textok app``: the local page (Gradio, an optional dependency: pip install -e '.[app]')."""

from __future__ import annotations


def register(sub) -> None:
    from ..explore import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS

    p = sub.add_parser("app", help="a local page: scenes from menus, reconstruct, swap the caption, compare N, "
                                   "generate (Gradio)",
                       description="Serve a local page over TexTok checkpoints: a Scenes tab (a scenes pair) and a "
                                   "Photos and emoji tab. With no model option it opens on the pairs shipped in the "
                                   "package (pretrained/: the scenes pair and its text-to-image DiTs if shipped, and "
                                   "the emoji pair); any model option replaces all of them.")
    p.add_argument("--checkpoint", action="append", default=[], metavar="DIR",
                   help="TexTok folder (repeat for several N); each folder's arm is read from its config "
                        "(text_in: none is the no-text baseline), whichever flag names it")
    p.add_argument("--baseline", action="append", default=[], metavar="DIR",
                   help="no-text baseline folder (repeat; paired with --checkpoint by N)")
    p.add_argument("--dit", default=None, metavar="DIR", help="a generation folder (DiT or DiT-T2I) for the Generate tab")
    p.add_argument("--scenes", action="append", default=[], metavar="DIR",
                   help="a scenes TexTok or baseline folder for the Scenes tab (repeat: one of each; arm read from "
                        "its config)")
    p.add_argument("--scenes-dit", action="append", default=[], metavar="DIR",
                   help="a text-to-image generation folder for the Scenes tab (repeat: one per arm)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: this machine only; any other address warns)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--device", default="cpu")
    p.add_argument("--max-upload-mb", type=float, default=DEFAULT_MAX_BYTES / 1024 / 1024,
                   help="refuse larger uploads (default %(default)g)")
    p.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                   help="refuse images with more pixels, read from the header (default %(default)d)")
    p.set_defaults(func=_app)


#: the shipped folders' name prefixes (``textok.pretrained``): the Photos and emoji tab's pair, the Scenes tab's
SHIPPED_PHOTOS, SHIPPED_SCENES = "emoji32", "scenes32"


def shipped_models(root=None) -> dict:
    """What the page opens on with no model option: ``{"checkpoints", "baselines", "scenes", "scenes_dits"}``
    from ``textok.pretrained`` (``root``, default its folder): the emoji pair, the scenes pair and the scenes
    pair's text-to-image DiTs (``<prefix>-<arm>-n<N>-dit`` folders holding a ``generation.json``); empty lists
    for what is not shipped."""
    from pathlib import Path

    from .. import pretrained

    root = Path(pretrained.PRETRAINED_DIR if root is None else root)
    checkpoints, baselines = pretrained.shipped_checkpoints(root, prefix=SHIPPED_PHOTOS)
    scenes = [p for arm in pretrained.shipped_checkpoints(root, prefix=SHIPPED_SCENES) for p in arm]
    dits = sorted(p for p in root.glob(f"{SHIPPED_SCENES}-*-n*-dit") if (p / "generation.json").is_file()) \
        if root.is_dir() else []
    return {"checkpoints": checkpoints, "baselines": baselines, "scenes": scenes, "scenes_dits": dits}


def _app(args) -> int:
    from .. import pretrained
    from ..explore import Explorer, SceneExplorer

    if args.max_upload_mb <= 0 or args.max_pixels <= 0:
        raise ValueError("--max-upload-mb and --max-pixels must be positive")
    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port must lie in [0, 65535], got {args.port}")
    models = {"checkpoints": args.checkpoint, "baselines": args.baseline, "scenes": args.scenes,
              "scenes_dits": args.scenes_dit}
    if not any(models.values()) and args.dit is None:
        models = shipped_models()
        if not any(models.values()):
            raise ValueError(f"no checkpoint: give --checkpoint DIR or --scenes DIR (no shipped checkpoints in "
                             f"{pretrained.PRETRAINED_DIR})")
    if models["scenes_dits"] and not models["scenes"]:
        raise ValueError("--scenes-dit needs the scenes pair: give --scenes DIR")
    from ..app import import_gradio, launch

    import_gradio()  # fail early, before the models load
    encoders = {}  # one text encoder for both tabs
    explorer = scenes = None
    if models["checkpoints"] or models["baselines"] or args.dit is not None:
        explorer = Explorer(models["checkpoints"], models["baselines"], dit=args.dit, device=args.device,
                            encoders=encoders)
        print(f"textok app: {explorer.describe()}", flush=True)
        for note in explorer.notes:
            print(f"textok app: note: {note}", flush=True)
    if models["scenes"]:
        scenes = SceneExplorer(models["scenes"], models["scenes_dits"], device=args.device, encoders=encoders,
                               lpips=explorer.lpips if explorer is not None else None)
        print(f"textok app: {scenes.describe()}", flush=True)
    launch(explorer, host=args.host, port=args.port or None, max_bytes=int(args.max_upload_mb * 1024 * 1024),
           max_pixels=args.max_pixels, scenes=scenes)
    return 0
