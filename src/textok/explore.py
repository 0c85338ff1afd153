"""What the caption does, as library functions: the logic behind ``textok app`` (no Gradio here).

- ``load_upload(path, max_bytes, max_pixels)``: an uploaded file -> RGB PIL image. The file
  size and the pixel count (PIL's header-only open) are checked *before* anything is decoded;
  the decode itself is the data layer's ``load_image`` (decompression bombs, truncated files,
  16-bit / CMYK / palette / animated images behave exactly as in training data).
- ``reconstruct_compare(models, image, caption)``: the same image through several tokenizers
  (e.g. ``{"baseline": ..., "TexTok": ...}``) -> images, PSNR and LPIPS per model.
- ``swap_caption(tokenizer, image, caption, other_caption)``: encode with ``caption``, decode the
  same tokens with ``caption`` and with ``other_caption`` -> both images, their difference.
- ``generate_samples(pipeline, ...)``: a DiT / DiT-T2I ``textok.generation.Pipeline`` -> samples
  and the time they took.
- ``Explorer``: the models loaded once (``CaptionedTokenizer``s of the TexTok and baseline checkpoints,
  by token count N, an optional DiT), a lock so one request at a time runs per model set, and the
  functions above bound to them. A checkpoint's arm comes from its config (``text_in == "none"``: the
  no-text baseline), whichever flag named it. The shipped pairs: ``textok.pretrained``.
- Scenes (``textok.data.scenes``: captions that state every factor): ``compose_scene`` (menu choices ->
  a scene), ``scene_adherence`` (does an image show a scene: ``textok.metrics.scenes``, exact and per
  factor, and what the image reads as), and ``SceneExplorer``: a scenes pair (and a text-to-image DiT per
  arm) that renders a caption's scene, reconstructs it, decodes its tokens under an edited caption and
  generates from the caption, scoring every image against the scene it should show.

Captions follow the library's rules: ``prepare_caption`` (whitespace, 75 words) and the text
encoder's token cut at the model's ``max_text_tokens``; an empty caption is a valid caption.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
import warnings
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch
from PIL import Image

from .conditioning import EMPTY_CAPTION, TextConditioner
from .data.transforms import MAX_IMAGE_PIXELS, ImageError, load_image, load_tensor, to_pil
from .models import TexTok
from .text import prepare_caption
from .tokenizer import CaptionedTokenizer, load_tokenizer

EXAMPLES_DIR = Path(__file__).resolve().parent / "app_examples"

DEFAULT_MAX_BYTES = 25 * 1024 * 1024  # 25 MiB
DEFAULT_MAX_PIXELS = MAX_IMAGE_PIXELS  # the library's one cap (textok.data.transforms), every command's


class UploadError(ValueError):
    """An upload was refused (too large, too many pixels, not a usable image); the message says why."""


# --------------------------------------------------------------------------------------------
# examples
# --------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Example:
    name: str
    path: Path
    caption: str
    split: str = ""  # the data split it comes from (``textok.pretrained.split_label`` names it for the page)


def bundled_examples(root: str | os.PathLike | None = None) -> list[Example]:
    """The held-out example images shipped with the package (``app_examples/examples.json``)."""
    root = Path(root) if root is not None else EXAMPLES_DIR
    index = root / "examples.json"
    if not index.is_file():
        return []
    data = json.loads(index.read_text(encoding="utf-8"))
    out = []
    for e in data.get("examples", []):
        path = root / e["file"]
        if path.is_file():
            out.append(Example(Path(e["file"]).stem.replace("-", " "), path, e.get("caption", ""), e.get("split", "")))
    return out


# --------------------------------------------------------------------------------------------
# uploads
# --------------------------------------------------------------------------------------------

def _size_text(n: float) -> str:
    return f"{n / 1024 / 1024:.1f} MB" if n >= 1024 * 1024 else f"{n / 1024:.0f} kB"


def load_upload(path: str | os.PathLike | None, max_bytes: int = DEFAULT_MAX_BYTES,
                max_pixels: int = DEFAULT_MAX_PIXELS, name: str | None = None) -> Image.Image:
    """An uploaded file -> RGB PIL image, or ``UploadError`` saying why not.

    Refused before decoding: files over ``max_bytes`` (checked with ``stat``) and images over
    ``max_pixels`` (width x height read from the header by PIL's lazy ``Image.open``). Then the
    data layer's ``load_image`` decodes it (its errors: not an image, truncated, bomb).
    ``name`` replaces the (temporary) path in messages; default: the file name. The image's
    ``info["frames"]`` holds the file's frame count (an animated GIF, APNG or WebP: only its
    first frame is used, as in training data; ``frame_note`` says so).
    """
    if path is None or str(path) == "":
        raise UploadError("no image: upload one or pick an example")
    path = Path(path)
    name = name or path.name
    if not path.is_file():
        raise UploadError(f"{name}: no such file")
    size = path.stat().st_size
    if size > max_bytes:
        raise UploadError(f"{name}: the file is {_size_text(size)}, over the {_size_text(max_bytes)} upload limit")
    if size == 0:
        raise UploadError(f"{name}: empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:  # reads the header only
                w, h = img.size
                frames = int(getattr(img, "n_frames", 1) or 1)
    except Image.DecompressionBombError:
        raise UploadError(f"{name}: refused: the header declares more pixels than PIL's bomb limit") from None
    except Image.UnidentifiedImageError:
        raise UploadError(f"{name}: not an image file PIL can read") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise UploadError(f"{name}: corrupt or truncated image ({e})") from None
    if w * h > max_pixels:
        raise UploadError(f"{name}: {w} x {h} = {w * h / 1e6:.1f} megapixels, over the "
                          f"{max_pixels / 1e6:.1f} megapixel limit (nothing was decoded)")
    try:
        image = load_image(path)
    except ImageError as e:
        raise UploadError(f"{name}: {e.reason}") from None
    image.info["frames"] = frames
    return image


def frame_note(image: Image.Image) -> str:
    """``"animated image: frame 1 of 12 used"`` for a multi-frame upload (``load_upload``), else ``""``."""
    frames = image.info.get("frames", 1)
    return f"animated image: frame 1 of {frames} used (the first, as in training data)" if frames > 1 else ""


# --------------------------------------------------------------------------------------------
# tokenizers as the page shows them
# --------------------------------------------------------------------------------------------

def arm(tokenizer: CaptionedTokenizer) -> str:
    """``"TexTok"`` (reads a caption) or ``"baseline"`` (``text_in == "none"`` in its config)."""
    return "TexTok" if tokenizer.uses_text else "baseline"


def display_name(tokenizer: CaptionedTokenizer) -> str:
    """The folder (or Hub repo) name a tokenizer was loaded from, else its arm."""
    return Path(tokenizer.name_or_path).name if tokenizer.name_or_path else arm(tokenizer)


def _encode(tok: CaptionedTokenizer, x: torch.Tensor, caption: str | None) -> torch.Tensor:
    return tok.encode(x, caption or EMPTY_CAPTION)  # no caption: the empty one, a valid caption


def _decode(tok: CaptionedTokenizer, tokens: torch.Tensor, caption: str | None) -> torch.Tensor:
    return tok.decode(tokens, caption or EMPTY_CAPTION).cpu()


def _captioned(model: CaptionedTokenizer | TexTok | str | os.PathLike) -> CaptionedTokenizer:
    return model if isinstance(model, CaptionedTokenizer) else load_tokenizer(model)


def caption_report(tok: CaptionedTokenizer, caption: str | None) -> dict:
    """How the library cuts ``caption`` for ``tok``: words kept, text tokens, whether cut."""
    caption = caption or ""
    if not tok.uses_text:
        return {"caption": prepare_caption(caption), "text_tokens": 0, "truncated": False, "used": False}
    enc = tok.text.encoder() if isinstance(tok.text, TextConditioner) else None
    if enc is None:  # captions embedded by a given callable: only the words are known
        return {"caption": prepare_caption(caption), "text_tokens": None, "truncated": False, "used": True}
    kept = prepare_caption(caption, enc.max_words)  # what the encoder sees (words cut first)
    full = len(enc.tokenizer(kept, truncation=False, verbose=False)["input_ids"])
    words_cut = len(kept.split()) < len(caption.split())
    return {"caption": kept, "text_tokens": min(full, enc.max_tokens), "truncated": words_cut or full > enc.max_tokens,
            "max_text_tokens": enc.max_tokens, "used": True}


# --------------------------------------------------------------------------------------------
# metrics
# --------------------------------------------------------------------------------------------

class LazyLPIPS:
    """LPIPS built on first use; ``None`` scores (and ``error`` says why) if its weights are missing."""

    def __init__(self):
        self._model, self.error = None, None

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> list[float | None]:
        if self._model is None and self.error is None:
            try:
                from .losses.lpips import LPIPS

                self._model = LPIPS()
            except (FileNotFoundError, OSError, ValueError, ImportError, RuntimeError) as e:
                self.error = f"LPIPS unavailable ({e}); run `textok assets fetch`"
        if self._model is None:
            return [None] * x.shape[0]
        with torch.no_grad():
            return [float(v) for v in self._model(x.float().cpu(), y.float().cpu())]


_LPIPS = LazyLPIPS()


def _scores(x: torch.Tensor, y: torch.Tensor, lpips) -> tuple[float, float | None]:
    from .metrics.image import psnr

    lp = (lpips or _LPIPS)(x, y)[0]
    return float(psnr(x.cpu(), y.cpu())[0]), lp


# --------------------------------------------------------------------------------------------
# the functions behind the page
# --------------------------------------------------------------------------------------------

def reconstruct_compare(models: Mapping[str, CaptionedTokenizer | TexTok], image: Image.Image | str | os.PathLike,
                        caption: str | None, lpips=None) -> dict:
    """``image`` through each model of ``models`` (label -> tokenizer; ``None`` entries are skipped).

    Returns ``{"images": {"original": PIL, label: PIL, ...}, "psnr": {label: dB}, "lpips":
    {label: float | None}, "seconds": {label: s}, "caption": {label: caption_report}}``. The
    original is the evaluation crop at the first model's resolution.
    """
    models = {k: _captioned(v) for k, v in models.items() if v is not None}
    if not models:
        raise ValueError("no model to reconstruct with")
    pil = image if isinstance(image, Image.Image) else load_image(image)  # read once for every model
    out = {"images": {}, "psnr": {}, "lpips": {}, "seconds": {}, "caption": {}}
    for label, tok in models.items():
        x = load_tensor(pil, tok.config.image_size)[None]
        if "original" not in out["images"]:
            out["images"]["original"] = to_pil(x[0])
        t0 = time.perf_counter()
        rec = _decode(tok, _encode(tok, x, caption), caption)
        out["seconds"][label] = time.perf_counter() - t0
        out["images"][label] = to_pil(rec[0])
        out["psnr"][label], out["lpips"][label] = _scores(rec, x, lpips)
        out["caption"][label] = caption_report(tok, caption)
    return out


def difference_image(a: torch.Tensor, b: torch.Tensor) -> tuple[Image.Image, int, float]:
    """|a - b| of two [1, 3, H, W] images in [-1, 1] as a grey image stretched to its maximum,
    the largest difference and the mean difference (in 0..255 levels, after quantisation)."""
    from .metrics.image import quantize

    d = (quantize(a) - quantize(b)).abs()[0]  # [3, H, W] levels
    grey = d.max(dim=0).values
    peak = float(grey.max())
    scaled = (grey / peak * 255.0) if peak > 0 else grey
    img = Image.fromarray(scaled.round().clamp(0, 255).to(torch.uint8).numpy()).convert("RGB")
    return img, int(peak), float(d.mean())


def swap_caption(model: CaptionedTokenizer | TexTok, image: Image.Image | str | os.PathLike, caption: str | None,
                 other_caption: str | None, lpips=None) -> dict:
    """Encode ``image`` with ``caption``; decode the *same tokens* with ``caption`` and with
    ``other_caption``.

    Returns ``{"images": {"original", "reconstruction", "swapped", "difference"}, "psnr":
    {"reconstruction", "swapped" (each vs the original), "between" (the two decodes)}, "lpips":
    {same keys}, "max_difference": levels, "mean_difference": levels, "text_in_decoder": bool}``.
    """
    tok = _captioned(model)
    x = load_tensor(image, tok.config.image_size)[None]
    tokens = _encode(tok, x, caption)
    rec, swapped = _decode(tok, tokens, caption), _decode(tok, tokens, other_caption)
    diff, peak, mean = difference_image(rec, swapped)
    out = {"images": {"original": to_pil(x[0]), "reconstruction": to_pil(rec[0]), "swapped": to_pil(swapped[0]),
                      "difference": diff},
           "psnr": {}, "lpips": {}, "max_difference": peak, "mean_difference": mean,
           "text_in_decoder": bool(tok.config.text_in_decoder),
           "caption": caption_report(tok, caption), "other_caption": caption_report(tok, other_caption)}
    for key, (a, b) in {"reconstruction": (rec, x), "swapped": (swapped, x), "between": (swapped, rec)}.items():
        out["psnr"][key], out["lpips"][key] = _scores(a, b, lpips)
    return out


def generate_samples(pipeline, prompt: str | None = None, class_id: int | None = None, cfg_scale: float | None = None,
                     steps: int | None = None, seed: int = 0, num: int = 4, sampler: str | None = None) -> dict:
    """Samples from a ``textok.generation.Pipeline``: ``{"images": [PIL], "seconds": s, "steps": n,
    "cfg_scale": g, "sampler": name}``. A class-conditional DiT takes ``class_id``, a DiT-T2I
    ``prompt`` (an empty prompt is allowed)."""
    if not 1 <= int(num) <= 64:
        raise ValueError(f"number of samples must lie in [1, 64], got {num}")
    if steps is not None and int(steps) < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    condition = pipeline.dit.config.condition
    cfg_scale, steps, sampler = pipeline.resolve_settings(cfg_scale, steps, sampler)  # the model's defaults
    kwargs = dict(cfg_scale=cfg_scale, steps=steps, sampler=sampler, seed=int(seed))
    t0 = time.perf_counter()
    if condition == "text":
        images = pipeline(prompts=[prompt or ""] * int(num), **kwargs)
    else:
        if class_id is None and condition == "class":
            raise ValueError("this DiT is class-conditional: pick a class")
        images = pipeline(labels=[int(class_id or 0)] * int(num), **kwargs)
    seconds = time.perf_counter() - t0
    return {"images": [to_pil(im) for im in images.cpu()], "seconds": seconds, "steps": steps,
            "cfg_scale": cfg_scale, "sampler": sampler}


# --------------------------------------------------------------------------------------------
# the loaded models behind one page
# --------------------------------------------------------------------------------------------

class Explorer:
    """TexTok and baseline tokenizers (keyed by token count N) and an optional generation
    pipeline, loaded once. Every call takes the lock of its model set: one request at a time.

    Each checkpoint's arm is read from its config (``text_in == "none"``: the no-text baseline),
    not from the list it came in: a baseline folder given as ``--checkpoint`` is still the
    baseline. ``notes`` says which checkpoints came in the other list."""

    def __init__(self, textok: Sequence[CaptionedTokenizer | TexTok | str | os.PathLike] = (),
                 baseline: Sequence[CaptionedTokenizer | TexTok | str | os.PathLike] = (), dit=None,
                 device: str | torch.device = "cpu", encoders: dict | None = None, lpips=None):
        self.encoders = {} if encoders is None else encoders
        self.notes: list[str] = []
        self.textok, self.baseline = {}, {}
        for flag, items in (("--checkpoint", textok), ("--baseline", baseline)):
            for item in items:
                tok = item if isinstance(item, CaptionedTokenizer) else load_tokenizer(item, device, pool=self.encoders)
                self._add(tok, flag)
        self.textok, self.baseline = dict(sorted(self.textok.items())), dict(sorted(self.baseline.items()))
        if not self.textok and not self.baseline:
            raise ValueError("no checkpoint: give --checkpoint DIR")
        self.pipeline = None
        if dit is not None:
            from .generation import Pipeline

            self.pipeline = dit if isinstance(dit, Pipeline) else Pipeline.from_pretrained(
                dit, device, text_encoder=self.encoders.get(("minilm", str(torch.device(device)))))
        self.lpips = lpips or LazyLPIPS()
        self.lock = threading.Lock()  # the tokenizers
        self.generation_lock = threading.Lock()  # the DiT

    def _add(self, tok: CaptionedTokenizer, flag: str) -> None:
        group, n, name = (self.textok if tok.uses_text else self.baseline), tok.config.num_tokens, display_name(tok)
        if (flag == "--checkpoint") != tok.uses_text:
            self.notes.append(f"{name} was given as {flag} but its config has text_in={tok.config.text_in!r}: "
                              f"shown as {'TexTok' if tok.uses_text else 'the no-text baseline'}")
        if n in group:
            raise ValueError(f"{flag}: two checkpoints with N={n} tokens for {arm(tok)} "
                             f"({display_name(group[n])} and {name}); give one per N")
        group[n] = tok

    @property
    def token_counts(self) -> list[int]:
        return sorted(set(self.textok) | set(self.baseline))

    def pair(self, n: int | None = None) -> dict[str, CaptionedTokenizer | None]:
        """``{"baseline": ..., "TexTok": ...}`` at N = ``n`` (default: the largest N)."""
        n = self.token_counts[-1] if n is None else int(n)
        if n not in self.token_counts:
            raise ValueError(f"no checkpoint with N={n} tokens; have {self.token_counts}")
        return {"baseline": self.baseline.get(n), "TexTok": self.textok.get(n)}

    def describe(self) -> str:
        parts = []
        for label, group in (("TexTok", self.textok), ("baseline", self.baseline)):
            for n, tok in group.items():
                c = tok.config
                parts.append(f"{label} N={n} ({display_name(tok)}, {c.image_size}px, {c.num_tokens}x{c.token_dim} tokens)")
        if self.pipeline is not None:
            parts.append(f"DiT ({self.pipeline.dit.config.condition}-conditional)")
        return "; ".join(parts)

    def reconstruct(self, image, caption: str | None, n: int | None = None) -> dict:
        pair = self.pair(n)
        with self.lock:
            out = reconstruct_compare(pair, image, caption, self.lpips)
        out["missing"] = [label for label, tok in pair.items() if tok is None]
        return out

    def swap(self, image, caption: str | None, other_caption: str | None, n: int | None = None) -> dict:
        pair = self.pair(n)
        tok = pair["TexTok"] or pair["baseline"]
        with self.lock:
            return swap_caption(tok, image, caption, other_caption, self.lpips)

    def sweep(self, image, caption: str | None) -> list[dict]:
        """``reconstruct`` at every N: ``[{"n": N, **reconstruct_compare(...)}, ...]``."""
        out = []
        with self.lock:
            for n in self.token_counts:
                out.append({"n": n, **reconstruct_compare(self.pair(n), image, caption, self.lpips)})
        return out

    def generate(self, **kwargs) -> dict:
        if self.pipeline is None:
            raise ValueError("no DiT loaded: start the app with --dit DIR")
        with self.generation_lock:
            return generate_samples(self.pipeline, **kwargs)


# --------------------------------------------------------------------------------------------
# scenes: captions that state every factor, and whether an image shows them
# --------------------------------------------------------------------------------------------

#: the scenes the page offers, name -> caption in the data's grammar (objects in reading order, as in training);
#: the first, the richest caption, opens the page. The last holds a colour-shape pair no scenes model saw
#: (``HELDOUT_PAIRS``).
SCENE_EXAMPLES = {
    "three objects": "a small yellow square at top middle, a large cyan ring at center and a small white cross at "
                     "bottom left, on a navy background",
    "two objects": "a large red circle at top left and a small blue diamond at bottom right, on a grey background",
    "one object": "a large orange triangle at middle right, on a black background",
    "held-out pair (red triangle)": "a small green circle at top right and a large red triangle at center, on a "
                                    "brown background",
}


def compose_scene(objects: Sequence[tuple[str, str, str, str] | None], background: str) -> dict:
    """A scene from menu choices: ``objects`` as ``(size, colour, shape, position)`` (``None``: no object),
    ``background`` a background name -> ``parse_caption``'s scene dict, objects in reading order (the order the
    data's captions list them). ``ValueError`` for no object, two objects in one cell (naming them, counted
    from 1) or a name outside the data's factors."""
    from .data.scenes import parse_caption, scene_captions

    chosen = [(i + 1, o) for i, o in enumerate(objects) if o is not None]
    if not chosen:
        raise ValueError("no object: a scene holds 1 to 3 objects")
    at: dict[str, int] = {}
    for k, (_, _, _, position) in chosen:
        if position in at:
            raise ValueError(f"objects {at[position]} and {k} are both at {position}: one object per cell")
        at[position] = k
    phrases = [{"size": o[0], "colour": o[1], "shape": o[2], "position": o[3]} for _, o in chosen]
    caption = scene_captions({"background": background, "objects": phrases})["full"]
    scene = parse_caption(caption)  # the data's own check of every name
    scene["objects"].sort(key=lambda o: o["cell"])
    return scene


def scene_caption(scene: dict) -> str:
    """The full caption of ``scene`` (the data's grammar); a scene without objects reads ``"no object, on a
    grey background"`` (what a reader may see in a generated image, never a training caption)."""
    from .data.scenes import scene_captions

    if not scene["objects"]:
        return f"no object, on a {scene['background']} background"
    return scene_captions(scene)["full"]


def scene_adherence(image: Image.Image, scene: dict) -> dict:
    """Whether ``image`` shows ``scene``, as ``textok.metrics.scenes.score_adherence`` judges it: ``{factor:
    bool}`` for ``FACTORS`` (``exact``: all of them), ``"objects"`` (per stated object), ``"read"`` (what the
    reader saw) and ``"reads_as"``: that reading as a caption."""
    from .data.scenes import POSITIONS
    from .metrics.scenes import score_adherence

    out = score_adherence([np.asarray(image.convert("RGB"))], [scene])["images"][0]
    seen = [{**o, "position": POSITIONS[int(c)], "cell": int(c)} for c, o in out["read"]["objects"].items()]
    out["reads_as"] = scene_caption({"background": out["read"]["background"],
                                     "objects": sorted(seen, key=lambda o: o["cell"])})
    return out


class SceneExplorer:
    """The scenes tab's models, loaded once: a TexTok and its no-text baseline trained on scenes (one N, one
    image size; either may be missing) and optionally a text-to-image DiT per arm (``dits``: generation
    folders or ``Pipeline``s; the arm is its tokenizer's). A caption's scene is rendered at the models' size
    (``render_scene``, no offsets), so what they reconstruct is exactly what the caption states; every image
    returned is scored against the scene it should show (``scene_adherence``)."""

    def __init__(self, checkpoints: Sequence[CaptionedTokenizer | TexTok | str | os.PathLike], dits: Sequence = (),
                 device: str | torch.device = "cpu", encoders: dict | None = None, lpips=None):
        self.encoders = {} if encoders is None else encoders
        if not checkpoints:
            raise ValueError("--scenes: no checkpoint (give a scenes TexTok and/or baseline folder)")
        toks = [c if isinstance(c, CaptionedTokenizer) else load_tokenizer(c, device, pool=self.encoders)
                for c in checkpoints]
        self.models = Explorer([t for t in toks if t.uses_text], [t for t in toks if not t.uses_text],
                               device=device, encoders=self.encoders, lpips=lpips)
        if len(self.models.token_counts) > 1:
            raise ValueError(f"--scenes: one N for the scenes tab, got N = {self.models.token_counts}")
        sizes = sorted({t.config.image_size for t in toks})
        if len(sizes) > 1:
            raise ValueError(f"--scenes: the checkpoints differ in image size ({sizes} px); give one pair")
        self.size = sizes[0]
        if self.size < 12:
            raise ValueError(f"--scenes: {self.size} px models: a scene needs >= 12 px (a 3x3 grid of shapes)")
        self.dits = {}
        for item in dits:
            self._add_dit(item, device)
        self.generation_lock = threading.Lock()

    def _add_dit(self, item, device) -> None:
        from .generation import Pipeline

        pipe = item if isinstance(item, Pipeline) else Pipeline.from_pretrained(
            item, device, text_encoder=self.encoders.get(("minilm", str(torch.device(device)))))
        name = Path(item).name if not isinstance(item, Pipeline) else "a DiT"
        if pipe.dit.config.condition != "text":
            raise ValueError(f"--scenes-dit {name}: a {pipe.dit.config.condition}-conditional DiT; the scenes tab "
                             "generates from captions (text-to-image)")
        label = "baseline" if pipe.tokenizer.config.text_in == "none" else "TexTok"
        if label in self.dits:
            raise ValueError(f"--scenes-dit: two DiTs decode with a {label} tokenizer; give one per arm")
        self.dits[label] = pipe

    def describe(self) -> str:
        dits = f"; text-to-image DiT for {' and '.join(self.dits)}" if self.dits else ""
        return f"scenes {self.size}px: {self.models.describe()}{dits}"

    def render(self, caption: str) -> tuple[dict, Image.Image]:
        """``caption`` (the data's grammar; ``parse_caption``'s ``ValueError`` otherwise) -> its scene and the
        scene rendered at the models' size."""
        from .data.scenes import parse_caption, render_scene

        scene = parse_caption(caption)
        return scene, render_scene(scene, self.size)

    def reconstruct(self, caption: str) -> dict:
        """The caption's scene, rendered, through the baseline and TexTok: ``Explorer.reconstruct``'s dict plus
        ``"scene"`` and ``"adherence"`` (``scene_adherence`` against the scene, per image: the render, each model)."""
        scene, image = self.render(caption)
        out = self.models.reconstruct(image, caption)
        out["scene"] = scene
        out["adherence"] = {label: scene_adherence(im, scene) for label, im in out["images"].items()}
        return out

    def edit(self, caption: str, edited_caption: str) -> dict:
        """Tokens of ``caption``'s scene (made with ``caption``), decoded with ``caption`` and with
        ``edited_caption`` (``swap_caption``, by TexTok; the baseline when it is the only model). Adds ``"scene"``,
        ``"edited_scene"``, the edited scene's render as ``images["target"]`` and ``"adherence"``: the
        reconstruction against the scene, the edited decode against the edited scene (what the edit asks for)
        and against the scene (what the tokens hold), the target against the edited scene."""
        scene, image = self.render(caption)
        edited_scene, target = self.render(edited_caption)
        out = self.models.swap(image, caption, edited_caption)
        pair = self.models.pair()
        out["images"]["target"] = target
        out.update(scene=scene, edited_scene=edited_scene, model=arm(pair["TexTok"] or pair["baseline"]))
        im = out["images"]
        out["adherence"] = {"reconstruction": scene_adherence(im["reconstruction"], scene),
                            "swapped": scene_adherence(im["swapped"], edited_scene),
                            "swapped_vs_original": scene_adherence(im["swapped"], scene),
                            "target": scene_adherence(target, edited_scene)}
        return out

    def generate(self, caption: str, seed: int = 0, num: int = 4, **settings) -> dict:
        """``num`` images per DiT from ``caption`` (``generate_samples``; ``settings``: ``cfg_scale``, ``steps``,
        ``sampler``, default the model's), each scored against the caption's scene: ``{"scene", label: {**
        generate_samples' dict, "adherence": [per image], "summary": summarize(...)}}``."""
        from .metrics.scenes import summarize

        if not self.dits:
            raise ValueError("no text-to-image DiT for the scenes tab: start the app with --scenes-dit DIR")
        scene, _ = self.render(caption)
        out = {"scene": scene}
        with self.generation_lock:
            for label in ("baseline", "TexTok"):
                if label in self.dits:
                    r = generate_samples(self.dits[label], prompt=caption, seed=seed, num=num, **settings)
                    r["adherence"] = [scene_adherence(im, scene) for im in r["images"]]
                    r["summary"] = summarize(r["adherence"])
                    out[label] = r
        return out


__all__ = [
    "UploadError", "load_upload", "frame_note", "reconstruct_compare", "swap_caption", "generate_samples",
    "difference_image", "caption_report", "arm", "display_name", "Explorer", "bundled_examples", "Example",
    "EXAMPLES_DIR", "DEFAULT_MAX_BYTES", "DEFAULT_MAX_PIXELS", "SCENE_EXAMPLES", "compose_scene", "scene_caption",
    "scene_adherence", "SceneExplorer",
]
