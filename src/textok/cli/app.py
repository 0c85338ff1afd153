"""``textok app``: the local page (Gradio, an optional dependency: pip install -e '.[app]')."""

from __future__ import annotations


def register(sub) -> None:
    from ..explore import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS

    p = sub.add_parser("app", help="a local page: reconstruct, swap the caption, compare N, generate (Gradio)",
                       description="Serve a local page over TexTok checkpoints. With no --checkpoint it opens on "
                                   "the small checkpoints shipped in the package (pretrained/), if installed.")
    p.add_argument("--checkpoint", action="append", default=[], metavar="DIR",
                   help="TexTok folder (repeat for several N); each folder's arm is read from its config "
                        "(text_in: none is the no-text baseline), whichever flag names it")
    p.add_argument("--baseline", action="append", default=[], metavar="DIR",
                   help="no-text baseline folder (repeat; paired with --checkpoint by N)")
    p.add_argument("--dit", default=None, metavar="DIR", help="a generation folder (DiT or DiT-T2I) for the Generate tab")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: this machine only; any other address warns)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--device", default="cpu")
    p.add_argument("--max-upload-mb", type=float, default=DEFAULT_MAX_BYTES / 1024 / 1024,
                   help="refuse larger uploads (default %(default)g)")
    p.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                   help="refuse images with more pixels, read from the header (default %(default)d)")
    p.set_defaults(func=_app)


def _app(args) -> int:
    from .. import pretrained
    from ..explore import Explorer

    if args.max_upload_mb <= 0 or args.max_pixels <= 0:
        raise ValueError("--max-upload-mb and --max-pixels must be positive")
    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port must lie in [0, 65535], got {args.port}")
    checkpoints, baselines = args.checkpoint, args.baseline
    if not checkpoints and not baselines:
        checkpoints, baselines = pretrained.shipped_checkpoints()
        if not checkpoints and not baselines:
            raise ValueError(f"no checkpoint: give --checkpoint DIR (no shipped checkpoints in {pretrained.PRETRAINED_DIR})")
    from ..app import import_gradio, launch

    import_gradio()  # fail early, before the models load
    explorer = Explorer(checkpoints, baselines, dit=args.dit, device=args.device)
    print(f"textok app: {explorer.describe()}", flush=True)
    for note in explorer.notes:
        print(f"textok app: note: {note}", flush=True)
    launch(explorer, host=args.host, port=args.port or None, max_bytes=int(args.max_upload_mb * 1024 * 1024),
           max_pixels=args.max_pixels)
    return 0
