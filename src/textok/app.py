"""``textok app``: a local Gradio page over ``textok.explore`` (a thin layer: no logic here).

Two tabs. **Scenes** (opened first, on an example already reconstructed): compose a scene's caption
from menus or type one, reconstruct its render with the baseline and TexTok, decode the same tokens
under an edited caption, generate from the caption (with text-to-image DiTs); every image is judged
against the scene it should show (exact and per factor). **Photos and emoji**: Reconstruct (original |
baseline | TexTok with PSNR and LPIPS), Swap the caption (the same tokens decoded with another
caption, and the difference), Tokens (every N side by side) and Generate (with ``--dit``). The page binds to 127.0.0.1 by default (and warns when bound
beyond it), sends no analytics, loads nothing from the internet, refuses oversized uploads
before decoding them, and runs one request at a time per model set (Gradio queue, concurrency 1).

Every image leaves the server as a lossless PNG at the model's resolution (the exact output, so
the difference image shows the model, not compression); the browser enlarges it with
nearest-neighbour only (CSS ``image-rendering: pixelated``). The page's API (``gradio_client``)
has one named endpoint per action, ``API_NAMES``, with named parameters; the page's internal
events are not published.

Gradio is an optional dependency (``pip install -e '.[app]'``), imported only when the page is
built.
"""

from __future__ import annotations

import functools
import html
import inspect
import ipaddress
import logging
import os
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from .explore import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_PIXELS,
    SCENE_EXAMPLES,
    Example,
    Explorer,
    SceneExplorer,
    UploadError,
    bundled_examples,
    compose_scene,
    frame_note,
    load_upload,
    scene_caption,
)
from .pretrained import split_label

log = logging.getLogger(__name__)

#: the page's API: action -> endpoint name (``Client(url).predict(..., api_name="/reconstruct")``)
API_NAMES = {"reconstruct": "reconstruct", "swap": "swap_caption", "sweep": "sweep_tokens", "generate": "generate",
             "scene": "scene_reconstruct", "scene_edit": "scene_edit", "scene_generate": "scene_generate"}
DISPLAY_SIZE = 256  # the image boxes' height in CSS pixels; the browser enlarges the exact image to fit
SCENE_DISPLAY_SIZE = 200  # three of them beside the Scenes tab's menus
#: seconds the server keeps an idle HTTP connection open. Uvicorn's default (5 s) equals httpx's idle expiry
#: (gradio_client's, 5 s): a client could send a request on a connection at the instant the server closed it,
#: and lose it to ``RemoteProtocolError`` (issue 46: 1 of 48 requests, 3 in 12 bursts). Longer than any client's
#: expiry, the client is the one that closes an idle connection.
KEEP_ALIVE_S = 75
# Enlarge the exact model-resolution PNGs in the browser without smoothing: one block per pixel.
CSS = """
.textok-img img { image-rendering: pixelated; width: 100%; height: 100%; object-fit: contain; }
#status .error, #status p.error { color: #b91c1c; font-weight: 600; }
#status .note, #status p.note { color: #1d4ed8; }
#scene-status .error, #scene-status p.error { color: #b91c1c; font-weight: 600; }
#scene-status .note, #scene-status p.note { color: #1d4ed8; }
.scene-table th, .scene-table td { white-space: nowrap; font-size: 0.9em; padding: 2px 6px; }
.scene-table td:last-child { white-space: normal; }
"""


def import_gradio():
    """Gradio with analytics and Hub telemetry off; a clear ``ImportError`` if it is not installed."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import gradio as gr
    except ImportError as e:
        raise ImportError("`textok app` needs Gradio, an optional dependency: pip install -e '.[app]' "
                          f"(or pip install 'gradio>=4'); import failed: {e}") from None
    return gr


def _accepts(fn, name: str) -> bool:
    return name in inspect.signature(fn).parameters


def _no_share(gr, cls) -> dict:
    """Hide the "share to Hugging Face" button (``buttons`` in Gradio 6, ``show_share_button`` before)."""
    if _accepts(cls.__init__, "buttons"):
        return {"buttons": ["download", "fullscreen"]}
    return {"show_share_button": False} if _accepts(cls.__init__, "show_share_button") else {}


def _style(gr) -> dict:
    """System fonts (nothing fetched from a font CDN) and the page's CSS."""
    theme = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])
    return {"theme": theme, "css": CSS}


def _fmt(v, spec: str, unit: str = "") -> str:
    if v is None:
        return "n/a"
    if spec == "psnr" and v == float("inf"):
        return "inf"
    return f"{v:.2f}{unit}" if spec == "psnr" else f"{v:.4f}{unit}"


def _caption_note(report: dict) -> str:
    if not report.get("used"):
        return "this model reads no text"
    note = f"{report['text_tokens']} text tokens (max {report['max_text_tokens']})"
    if report["truncated"]:
        note += ", **cut** to fit"
    if not report["caption"]:
        note += ", empty caption"
    return note


def metrics_markdown(result: dict) -> str:
    """The Reconstruct tab's table: one row per model."""
    rows = ["| model | PSNR (dB) ↑ | LPIPS ↓ | time | caption |", "|---|---|---|---|---|"]
    for label in result["psnr"]:
        rows.append(f"| {label} | {_fmt(result['psnr'][label], 'psnr')} | {_fmt(result['lpips'][label], 'lpips')} | "
                    f"{result['seconds'][label] * 1000:.0f} ms | {_caption_note(result['caption'][label])} |")
    for label in result.get("missing", []):
        rows.append(f"| {label} | no checkpoint at this N | | | |")
    return "\n".join(rows)


def swap_markdown(result: dict) -> str:
    p, lp = result["psnr"], result["lpips"]
    lines = ["| compared | PSNR (dB) | LPIPS |", "|---|---|---|",
             f"| reconstruction vs original | {_fmt(p['reconstruction'], 'psnr')} | {_fmt(lp['reconstruction'], 'lpips')} |",
             f"| swapped vs original | {_fmt(p['swapped'], 'psnr')} | {_fmt(lp['swapped'], 'lpips')} |",
             f"| swapped vs reconstruction | {_fmt(p['between'], 'psnr')} | {_fmt(lp['between'], 'lpips')} |", "",
             f"Largest pixel change: **{result['max_difference']}** levels of 255 (mean {result['mean_difference']:.2f}); "
             "the difference image is stretched to its largest change."]
    if not result["text_in_decoder"]:
        lines.append("\nThis checkpoint's detokenizer reads no text, so both decodes are the same.")
    return "\n".join(lines)


def sweep_markdown(results: list[dict]) -> str:
    rows = ["| N | baseline PSNR | baseline LPIPS | TexTok PSNR | TexTok LPIPS |", "|---|---|---|---|---|"]
    for r in results:
        cells = []
        for label in ("baseline", "TexTok"):
            cells += [_fmt(r["psnr"].get(label), "psnr"), _fmt(r["lpips"].get(label), "lpips")]
        rows.append(f"| {r['n']} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def page_text(value, field: str) -> str:
    """A text field's value as the CLI takes a ``--caption``: valid UTF-8 (the API can send a lone
    surrogate, which the text encoder refuses with a ``TypeError``); errors name the page's ``field``."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{field}: must be text, got {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError(f"{field}: not valid UTF-8 text (a lone surrogate at character {e.start + 1})") from None
    return value


def page_number(value, field: str, low: float, high: float, integer: bool = False):
    """A number field's value in ``[low, high]`` (finite; whole if ``integer``), else ``ValueError``
    naming the page's ``field``: the API takes any JSON, and torch says "Overflow when unpacking
    long long" about a seed of 10^30."""
    import math

    try:
        number = value if isinstance(value, int) and not isinstance(value, bool) else float(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{field}: must be a number, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(number) or not low <= number <= high \
            or (integer and not float(number).is_integer()):
        kind, show = ("an integer" if integer else "a number"), (lambda x: f"{x:,}" if float(x).is_integer() else f"{x:g}")
        raise ValueError(f"{field}: must be {kind} in [{show(low)}, {show(high)}], got {value!r}")
    return int(number) if integer else float(number)


def _error(e: Exception | str) -> str:
    return f'<p class="error">⚠ {html.escape(str(e))}</p>'


def _note(text: str) -> str:
    return f'<p class="note">ℹ {html.escape(text)}</p>' if text else ""


def _internal(gr) -> dict:
    """Keep a page-internal event out of the API: ``api_visibility`` (Gradio 6), ``api_name=False`` before."""
    return {"api_visibility": "private"} if _accepts(gr.Button.click, "api_visibility") else {"api_name": False}


def _millions(n: int) -> str:
    return f"{n / 1e6:.2f} M" if n < 1e7 else f"{n / 1e6:.0f} M"


def examples_label(examples: Sequence[Example]) -> str:
    """Where the bundled examples come from, each split named for what it measures."""
    splits = sorted({e.split for e in examples if e.split})
    return ", ".join(split_label(s) for s in splits) or "held-out images"


def guide_markdown(explorer: Explorer, examples: Sequence[Example] = ()) -> str:
    """The page's opening line: what it shows (resolution, model size) and how to read PSNR / LPIPS."""
    toks = [*explorer.textok.values(), *explorer.baseline.values()]
    sizes = " / ".join(str(s) for s in sorted({t.config.image_size for t in toks}))
    params = sorted({_millions(t.model.num_parameters()["total"]) for t in toks}, key=lambda v: float(v.split()[0]))
    size = params[0] if len(params) == 1 else f"{params[0].split()[0]}-{params[-1]}"
    text = (f"**What you see.** Each image is centre-cropped to the {sizes} px square the tokenizer was trained at "
            "and shown enlarged without smoothing (each block is one pixel; the files are the exact PNG output). "
            f"A small model ({size} parameters) encodes it into N tokens and decodes them: the **baseline** from the "
            "tokens alone, **TexTok** from the tokens and the caption. **PSNR** (dB, higher is better) is pixel "
            "agreement with the cropped original; +6 dB halves the typical pixel error. **LPIPS** (lower is better, "
            "0 = identical) is a perceptual distance computed by a pretrained network. Both score this one image; "
            "a model's scores over a data set (`textok eval-tokenizer`) average many.")
    if examples:
        text += f" The examples are from {examples_label(examples)}."
    return text


def _guarded(fn, n_outputs: int, on_error: tuple | None = None):
    """``fn`` returns its outputs and a note for the status line ("" for none). Bad input (or any failure) ->
    ``on_error`` (default: empty outputs) and a message in the status line; the page stays up."""
    on_error = (None,) * n_outputs if on_error is None else on_error

    @functools.wraps(fn)  # the API names its parameters (and describes itself) after fn
    def run(*args):
        try:
            *outputs, note = fn(*args)
            return (*outputs, _note(note))
        except (UploadError, ValueError) as e:
            return (*on_error, _error(e))
        except Exception as e:  # noqa: BLE001 - the page must survive anything
            log.exception("request failed")
            return (*on_error, _error(f"internal error: {type(e).__name__}: {e}"))
    return run


def build_app(explorer: Explorer | None, max_bytes: int = DEFAULT_MAX_BYTES, max_pixels: int = DEFAULT_MAX_PIXELS,
              examples: Sequence[Example] | None = None, scenes: SceneExplorer | None = None):
    """The Gradio ``Blocks`` over ``explorer`` (the Photos and emoji tab) and ``scenes`` (the Scenes tab, opened
    first, with its first example already reconstructed); either may be None, not both. Not launched: see
    ``launch``.

    ``demo.textok_handlers`` holds the event handlers as the page and the API call them (by action:
    ``API_NAMES``): their outputs, then the status line (an error, or a note such as the frame an animated
    image was read from)."""
    if explorer is None and scenes is None:
        raise ValueError("no models for the page: give --checkpoint DIR or --scenes DIR")
    gr = import_gradio()
    style_in_launch = _accepts(gr.Blocks.launch, "css")  # Gradio 6 moved theme and css to launch()
    handlers = {}
    with gr.Blocks(title="TexTok: what the caption does", analytics_enabled=False,
                   **({} if style_in_launch else _style(gr))) as demo:
        gr.Markdown("## TexTok: what the caption does", elem_id="title")
        with gr.Tabs(selected="scenes-tab" if scenes is not None else "photos-tab"):
            if scenes is not None:
                with gr.Tab("Scenes", id="scenes-tab"):
                    handlers.update(_scenes_tab(gr, scenes))
            if explorer is not None:
                with gr.Tab("Photos and emoji", id="photos-tab"):
                    handlers.update(_photos_tab(gr, explorer, max_bytes, max_pixels, examples))
    demo.textok_handlers = handlers  # the event handlers as the page calls them (for tests)
    return demo


def _picture(gr, label, elem_id, value=None, height=DISPLAY_SIZE):
    # lossless PNG at the model's resolution: the exact output (Gradio's default is lossy WebP)
    return gr.Image(value=value, label=label, type="pil", format="png", interactive=False, height=height,
                    elem_id=elem_id, elem_classes="textok-img", **_no_share(gr, gr.Image))


def _photos_tab(gr, explorer: Explorer, max_bytes: int, max_pixels: int, examples) -> dict:
    """Upload an image or pick an emoji: Reconstruct, Swap the caption, Tokens, Generate (with ``--dit``)."""
    examples = list(bundled_examples() if examples is None else examples)
    by_name = {e.name: e for e in examples}
    counts = explorer.token_counts

    def source(image, example):
        if image:
            return load_upload(image, max_bytes, max_pixels, name=Path(image).name)
        if example in by_name:
            return load_upload(by_name[example].path, max_bytes, max_pixels)
        raise UploadError("no image: upload one or pick an example")

    def reconstruct(image, example, caption, num_tokens):
        """Reconstruct an image with the no-text baseline and with TexTok at N tokens.

        Parameters:
            image: an image file to upload (or None to use `example`)
            example: the name of a bundled example image
            caption: the caption TexTok reads (empty is fine)
            num_tokens: N, which checkpoints to use
        """
        caption, n = page_text(caption, "Caption"), page_number(num_tokens, "Tokens N", 1, 1 << 24, integer=True)
        pil = source(image, example)
        r = explorer.reconstruct(pil, caption, n)
        im = r["images"]
        return im["original"], im.get("baseline"), im.get("TexTok"), metrics_markdown(r), frame_note(pil)

    def swap_caption(image, example, caption, other_caption, num_tokens):
        """Encode with `caption`, decode the same tokens with `caption` and with `other_caption`.

        Parameters:
            image: an image file to upload (or None to use `example`)
            example: the name of a bundled example image
            caption: the caption the tokens are made with
            other_caption: the caption the same tokens are decoded with the second time
            num_tokens: N, which checkpoint to use
        """
        caption, other_caption = page_text(caption, "Caption"), page_text(other_caption, "Another caption")
        n = page_number(num_tokens, "Tokens N", 1, 1 << 24, integer=True)
        pil = source(image, example)
        r = explorer.swap(pil, caption, other_caption, n)
        im = r["images"]
        return im["reconstruction"], im["swapped"], im["difference"], swap_markdown(r), frame_note(pil)

    def sweep_tokens(image, example, caption):
        """Reconstruct an image at every N loaded, baseline and TexTok.

        Parameters:
            image: an image file to upload (or None to use `example`)
            example: the name of a bundled example image
            caption: the caption TexTok reads
        """
        caption = page_text(caption, "Caption")
        pil = source(image, example)
        results = explorer.sweep(pil, caption)
        gallery = [(results[0]["images"]["original"], "original")]
        for r in results:
            for label in ("baseline", "TexTok"):
                if label in r["images"]:
                    gallery.append((r["images"][label], f"N={r['n']} {label}: {_fmt(r['psnr'][label], 'psnr')} dB"))
        return gallery, sweep_markdown(results), frame_note(pil)

    gallery_kw = _no_share(gr, gr.Gallery)
    notes = "".join(f"\n\n*Note: {html.escape(n)}.*" for n in explorer.notes)
    gr.Markdown(guide_markdown(explorer, examples) + "\n\n" + html.escape(explorer.describe()) + notes, elem_id="guide")
    with gr.Row():
        upload = gr.File(label="Upload an image", file_types=["image"], type="filepath", elem_id="upload")
        with gr.Column():
            example = gr.Dropdown(choices=list(by_name), value=None, label=f"…or an example from "
                                  f"{examples_label(examples)}", elem_id="example")
            caption = gr.Textbox(label="Caption (empty is fine; long ones are cut as in training)", lines=2,
                                 max_length=2000, elem_id="caption")
            n_tokens = gr.Radio(choices=[str(n) for n in counts], value=str(counts[-1]),
                                label="Tokens N (which checkpoints)", visible=len(counts) > 1, elem_id="n-tokens")
    status = gr.HTML("", elem_id="status")
    with gr.Tabs():
        with gr.Tab("Reconstruct", id="reconstruct-tab"):
            rec_btn = gr.Button("Reconstruct", variant="primary", elem_id="reconstruct")
            with gr.Row():
                img_orig = _picture(gr, "original (cropped as the model sees it)", "img-original")
                img_base = _picture(gr, "baseline (no text)", "img-baseline")
                img_tex = _picture(gr, "TexTok", "img-textok")
            metrics = gr.Markdown("", elem_id="metrics")
        with gr.Tab("Swap the caption", id="swap-tab"):
            other = gr.Textbox(label="Another caption for the same tokens", lines=2, max_length=2000,
                               elem_id="other-caption")
            swap_btn = gr.Button("Decode with the other caption", variant="primary", elem_id="swap")
            with gr.Row():
                img_rec = _picture(gr, "decoded with the caption", "img-rec")
                img_swap = _picture(gr, "decoded with the other caption", "img-swapped")
                img_diff = _picture(gr, "difference (stretched)", "img-diff")
            swap_metrics = gr.Markdown("", elem_id="swap-metrics")
        with gr.Tab("Tokens", id="tokens-tab"):
            gr.Markdown(tokens_markdown(counts), elem_id="tokens-note")
            sweep_btn = gr.Button("Reconstruct at every N", variant="primary", elem_id="sweep")
            sweep_gallery = gr.Gallery(label="reconstructions by N", columns=max(3, 2 * len(counts) + 1),
                                       format="png", elem_id="sweep-gallery", elem_classes="textok-img", **gallery_kw)
            sweep_table = gr.Markdown("", elem_id="sweep-metrics")
        if explorer.pipeline is not None:
            on_generate = _generate_tab(gr, explorer, status)

    example.input(lambda name: (None, by_name[name].caption if name in by_name else gr.update()),
                  inputs=example, outputs=[upload, caption], queue=False, **_internal(gr))
    upload.upload(lambda f: None, inputs=upload, outputs=example, queue=False, **_internal(gr))
    common = dict(concurrency_limit=1, concurrency_id="tokenizers")
    handlers = {"reconstruct": _guarded(reconstruct, 4), "swap": _guarded(swap_caption, 4),
                "sweep": _guarded(sweep_tokens, 2)}
    rec_btn.click(handlers["reconstruct"], inputs=[upload, example, caption, n_tokens],
                  outputs=[img_orig, img_base, img_tex, metrics, status], api_name=API_NAMES["reconstruct"], **common)
    swap_btn.click(handlers["swap"], inputs=[upload, example, caption, other, n_tokens],
                   outputs=[img_rec, img_swap, img_diff, swap_metrics, status], api_name=API_NAMES["swap"], **common)
    sweep_btn.click(handlers["sweep"], inputs=[upload, example, caption],
                    outputs=[sweep_gallery, sweep_table, status], api_name=API_NAMES["sweep"], **common)
    if explorer.pipeline is not None:
        handlers["generate"] = on_generate
    return handlers


# ---- the Scenes tab ------------------------------------------------------------------------------------------------

SCENE_SLOTS = 3  # object menus: the data's most objects per scene (textok.data.scenes.MAX_OBJECTS)
#: the adherence columns, the whole scene first (``textok.metrics.scenes.FACTORS``' names)
SCENE_COLUMNS = ("exact", "background", "present", "colour", "shape", "size", "empty", "count")


def _mark(ok) -> str:
    return "✓" if ok else "✗"


def adherence_markdown(rows: Sequence[tuple[str, str, dict, float | None]]) -> str:
    """The Scenes tab's table: per ``(image, what it should show, scene_adherence dict, PSNR or None)``, a
    ✓ / ✗ per factor (``exact``: all of them), the PSNR and what the image reads as."""
    head = ["image", "should show", *SCENE_COLUMNS, "PSNR (dB)", "reads as"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for image, against, a, psnr in rows:
        cells = [image, against, *(_mark(a[f]) for f in SCENE_COLUMNS), "" if psnr is None else _fmt(psnr, "psnr"),
                 html.escape(a["reads_as"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def scene_generate_markdown(result: dict) -> str:
    """Per DiT, the share of its samples right on each factor (``textok.metrics.scenes.summarize``)."""
    head = ["DiT decoding with", "samples", *SCENE_COLUMNS, "time"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label in ("baseline", "TexTok"):
        if label in result:
            r = result[label]
            rates = [f"{100 * r['summary']['images'][f]:.0f}%" for f in SCENE_COLUMNS]
            lines.append(f"| {label} | {len(r['images'])} | " + " | ".join(rates) + f" | {r['seconds']:.1f} s |")
    return "\n".join(lines)


def scenes_guide_markdown(scenes: SceneExplorer) -> str:
    """The Scenes tab's opening lines: what a scene is, what is shown, how adherence is read."""
    return (f"**Scenes** are drawn from their caption: 1 to 3 objects (colour, shape, size, cell of a 3x3 grid) on a "
            f"background, rendered at {scenes.size} px, the data the scenes models were trained on (`textok data "
            "fetch scenes`). The caption states every factor, so it can be checked: each image is read back without "
            "its caption (`textok.metrics.scenes`) and judged against the scene it should show, **exact** (every "
            "factor right) and per factor (✓ / ✗). The **baseline** decodes the tokens alone, **TexTok** the tokens "
            "and the caption. Compose a caption with the menus or type one; then edit it and decode the *same "
            "tokens* with the edited caption.\n\n" + html.escape(scenes.describe()))


def scene_menu_values(scene: dict) -> list:
    """The menus' values for ``scene``: background, then per object slot (on, size, colour, shape, position);
    an empty slot is off (its menus keep their values)."""
    out = [scene["background"]]
    for k in range(SCENE_SLOTS):
        if k < len(scene["objects"]):
            o = scene["objects"][k]
            out += [True, o["size"], o["colour"], o["shape"], o["position"]]
        else:
            out += [False, None, None, None, None]  # None: the page leaves that menu as it is
    return out


def scene_from_menus(background, *slots) -> dict:
    """``scene_menu_values``' inverse: the menus' values -> ``compose_scene``'s scene (errors name the object)."""
    objects = [tuple(slots[i + 1:i + 5]) if slots[i] else None for i in range(0, len(slots), 5)]
    return compose_scene(objects, background)


def scene_field(value, field: str) -> str:
    """A scenes caption from the page's ``field``: text (``page_text``) in the data's grammar
    (``parse_caption``), else ``ValueError`` naming the field and the phrase."""
    from .data.scenes import parse_caption

    caption = page_text(value, field)
    try:
        parse_caption(caption)
    except ValueError as e:
        raise ValueError(f"{field}: {e}") from None
    return caption


def _scenes_tab(gr, scenes: SceneExplorer) -> dict:
    """Compose or type a scene's caption, reconstruct it, decode its tokens under an edited caption, generate
    from it (with text-to-image DiTs); every image judged against its scene."""
    from .data.scenes import BACKGROUNDS, COLOURS, POSITIONS, SHAPES, SIZES, SWAP_FACTORS, parse_caption, swap_scene

    labels = {"baseline": "baseline (no text)", "TexTok": "TexTok"}

    def scene_reconstruct(caption):
        """Render the scene a caption states and reconstruct it with the no-text baseline and with TexTok.

        Parameters:
            caption: a scenes caption, e.g. "a large red circle at top left, on a grey background"
        """
        caption = scene_field(caption, "Scene caption")
        r = scenes.reconstruct(caption)
        im, a = r["images"], r["adherence"]
        rows = [("scene (rendered)", "the caption", a["original"], None)]
        rows += [(labels[k], "the caption", a[k], r["psnr"][k]) for k in ("baseline", "TexTok") if k in im]
        return im["original"], im.get("baseline"), im.get("TexTok"), adherence_markdown(rows), caption, ""

    def scene_edit(caption, edited_caption):
        """Make tokens of a caption's scene, decode them with that caption and with an edited one (TexTok).

        Parameters:
            caption: the caption the scene is rendered from and its tokens made with
            edited_caption: the caption the same tokens are decoded with the second time
        """
        caption = scene_field(caption, "Tokens made from")
        edited_caption = scene_field(edited_caption, "Scene caption")
        r = scenes.edit(caption, edited_caption)
        im, a, model = r["images"], r["adherence"], r["model"]
        table = adherence_markdown([
            (f"{model}, own caption", "the scene", a["reconstruction"], r["psnr"]["reconstruction"]),
            (f"{model}, edited caption", "the edited scene", a["swapped"], None),
            (f"{model}, edited caption", "the scene (the tokens')", a["swapped_vs_original"], r["psnr"]["swapped"]),
            ("edited scene (rendered)", "the edited scene", a["target"], None)])
        table += (f"\n\nLargest pixel change between the two decodes: **{r['max_difference']}** levels of 255 "
                  f"(mean {r['mean_difference']:.2f}).")
        note = "the edited caption is the tokens' own: edit the menus or the text, or press a random edit" \
            if r["edited_scene"] == r["scene"] else ""
        if not r["text_in_decoder"]:
            note = "this model's detokenizer reads no text: both decodes are the same"
        return im["reconstruction"], im["swapped"], im["target"], table, note

    def scene_generate(caption, seed):
        """Generate images from a scenes caption with the text-to-image DiT of each arm.

        Parameters:
            caption: a scenes caption (the prompt)
            seed: the random seed (same seed, same samples)
        """
        from .config import MAX_SEED

        caption = scene_field(caption, "Scene caption")
        r = scenes.generate(caption, seed=page_number(0 if seed is None else seed, "Seed", 0, MAX_SEED, integer=True))
        gallery = [(im, f"{label} {i + 1}: exact {_mark(a['exact'])}") for label in ("baseline", "TexTok")
                   if label in r for i, (im, a) in enumerate(zip(r[label]["images"], r[label]["adherence"]))]
        return gallery, scene_generate_markdown(r), ""

    first = next(iter(SCENE_EXAMPLES.values()))
    handlers = {"scene": _guarded(scene_reconstruct, 5, on_error=(None, None, None, None, gr.update())),
                "scene_edit": _guarded(scene_edit, 4)}
    opening = handlers["scene"](first)  # the page opens on a reconstructed example: no request needed
    values = scene_menu_values(parse_caption(first))
    gr.Markdown(scenes_guide_markdown(scenes), elem_id="scenes-guide")
    with gr.Row(equal_height=False):  # the menus beside the images: the opening reconstruction shows at once
        with gr.Column(scale=1, min_width=560):
            with gr.Row():
                example = gr.Dropdown(choices=list(SCENE_EXAMPLES), value=next(iter(SCENE_EXAMPLES)),
                                      label="An example scene", elem_id="scene-example")
                background = gr.Dropdown(choices=list(BACKGROUNDS), value=values[0], label="Background",
                                         elem_id="scene-background")
            menus = [background]
            for k in range(SCENE_SLOTS):
                on, size, colour, shape, position = values[1 + 5 * k:6 + 5 * k]
                default = SIZES[0], list(COLOURS)[k], SHAPES[k], POSITIONS[2 * k + 2]  # an off slot's: distinct cells
                with gr.Row(elem_id=f"scene-object-{k + 1}"):
                    menus.append(gr.Checkbox(value=on, label=f"Object {k + 1}", elem_id=f"scene-on-{k + 1}",
                                             min_width=90))
                    for i, (name, choices, value) in enumerate((("size", SIZES, size), ("colour", COLOURS, colour),
                                                                ("shape", SHAPES, shape), ("cell", POSITIONS, position))):
                        menus.append(gr.Dropdown(choices=list(choices), value=value or default[i],
                                                 label=name.capitalize(), elem_id=f"scene-{name}-{k + 1}", min_width=90))
            caption = gr.Textbox(value=first, label="Scene caption (from the menus, or type one in the same words)",
                                 lines=2, max_length=2000, elem_id="scene-caption")
            rec_btn = gr.Button("Reconstruct this scene", variant="primary", elem_id="scene-reconstruct")
        with gr.Column(scale=1):
            status = gr.HTML("", elem_id="scene-status")
            with gr.Row():
                img_scene = _picture(gr, "the scene (rendered)", "scene-img-original", opening[0], SCENE_DISPLAY_SIZE)
                img_base = _picture(gr, "baseline (no text)", "scene-img-baseline", opening[1], SCENE_DISPLAY_SIZE)
                img_tex = _picture(gr, "TexTok", "scene-img-textok", opening[2], SCENE_DISPLAY_SIZE)
    table = gr.Markdown(opening[3] or "", elem_id="scene-metrics", elem_classes="scene-table")
    gr.Markdown("### Decode the same tokens with an edited caption\nEdit the menus or the caption above (or press a "
                "random edit), then decode: the tokens stay those of the scene they were made from.")
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=560):
            made_from = gr.Textbox(value=first, label="Tokens made from (the last scene reconstructed)",
                                   interactive=False, elem_id="scene-made-from")
            edit_btn = gr.Button("Decode these tokens with the scene caption", variant="primary", elem_id="scene-edit")
            with gr.Row():
                swap_btns = {f: gr.Button(f"Random {f} edit", elem_id=f"scene-swap-{f}") for f in SWAP_FACTORS}
        with gr.Row():
            img_own = _picture(gr, "decoded, own caption", "scene-img-own", height=SCENE_DISPLAY_SIZE)
            img_edited = _picture(gr, "decoded, edited caption", "scene-img-edited", height=SCENE_DISPLAY_SIZE)
            img_target = _picture(gr, "the edited scene (rendered)", "scene-img-target", height=SCENE_DISPLAY_SIZE)
    edit_table = gr.Markdown("", elem_id="scene-edit-metrics", elem_classes="scene-table")
    if scenes.dits:
        gr.Markdown(f"### Generate from the caption\nA text-to-image DiT per arm ({', '.join(scenes.dits)}) samples "
                    "token sets from the scene caption; each sample is judged against the caption's scene.")
        with gr.Row():
            seed = gr.Number(value=0, precision=0, label="Seed", elem_id="scene-seed")
            gen_btn = gr.Button("Generate", variant="primary", elem_id="scene-generate")
        gallery = gr.Gallery(label="samples", columns=4, format="png", elem_id="scene-samples",
                             elem_classes="textok-img", **_no_share(gr, gr.Gallery))
        gen_table = gr.Markdown("", elem_id="scene-generate-metrics", elem_classes="scene-table")

    # page-internal events (not in the API): menus -> caption, caption -> menus, examples, random edits
    def menus_to_caption(*menu_values):
        try:
            return scene_caption(scene_from_menus(*menu_values)), ""
        except ValueError as e:
            return gr.update(), _error(e)

    def caption_to_menus(text):
        # silent on a caption outside the grammar (the buttons say why): a status line appearing on leaving the
        # box would move the button under the pointer before the click lands
        try:
            return _menu_updates(gr, parse_caption(page_text(text, "Scene caption")))
        except ValueError:
            return [gr.update()] * len(menus)

    def random_edit(factor, tokens_caption):
        try:
            scene, what = swap_scene(parse_caption(scene_field(tokens_caption, "Tokens made from")), factor,
                                     np.random.default_rng())
        except ValueError as e:
            return (gr.update(), *[gr.update()] * len(menus), _error(e))
        return (scene_caption(scene), *_menu_updates(gr, scene), _note(f"random edit: {what}"))

    private = dict(queue=False, **_internal(gr))
    gr.on([m.input for m in menus], menus_to_caption, inputs=menus, outputs=[caption, status], **private)
    gr.on([caption.blur, caption.submit], caption_to_menus, inputs=caption, outputs=menus, **private)
    common = dict(concurrency_limit=1, concurrency_id="scenes")
    rec_outputs = [img_scene, img_base, img_tex, table, made_from, status]
    edit_args = dict(inputs=[made_from, caption], outputs=[img_own, img_edited, img_target, edit_table, status])
    # the API's events first: a private event of the same function would otherwise take its endpoint name
    rec_btn.click(handlers["scene"], inputs=caption, outputs=rec_outputs, api_name=API_NAMES["scene"], **common)
    edit_btn.click(handlers["scene_edit"], api_name=API_NAMES["scene_edit"], **edit_args, **common)
    example.input(lambda name: (SCENE_EXAMPLES.get(name, first), *_menu_updates(gr, parse_caption(
        SCENE_EXAMPLES.get(name, first)))), inputs=example, outputs=[caption, *menus], **private).then(
        handlers["scene"], inputs=caption, outputs=rec_outputs, **common, **_internal(gr))
    for factor, btn in swap_btns.items():
        btn.click(functools.partial(random_edit, factor), inputs=made_from, outputs=[caption, *menus, status],
                  **private).then(handlers["scene_edit"], **edit_args, **common, **_internal(gr))
    if scenes.dits:
        handlers["scene_generate"] = _guarded(scene_generate, 2)
        gen_btn.click(handlers["scene_generate"], inputs=[caption, seed], outputs=[gallery, gen_table, status],
                      api_name=API_NAMES["scene_generate"], concurrency_limit=1, concurrency_id="scene-dits")
    return handlers


def _menu_updates(gr, scene: dict) -> list:
    """``scene_menu_values`` as updates: ``None`` (an empty slot's menus) leaves a menu as it is."""
    return [gr.update() if v is None else v for v in scene_menu_values(scene)]


def tokens_markdown(counts: Sequence[int]) -> str:
    """The Tokens tab's note: which N are loaded and what picks the N of the other tabs."""
    text = f"Checkpoints at N = {', '.join(map(str, counts))} tokens. "
    if len(counts) > 1:
        return text + ("**Tokens N** (above, under the caption) picks the N that Reconstruct and Swap the caption "
                       "use; this tab reconstructs at every N.")
    return text + ("One N is loaded, so there is no N to pick: repeat `--checkpoint` / `--baseline` with checkpoints "
                   "at other N to compare them here.")


def generate_arguments(prompt, class_id, guidance_scale, steps, seed, num_samples) -> dict:
    """The Generate tab's fields (as the page and ``/generate`` send them) checked, each error naming
    the field as the page labels it, and turned into ``Explorer.generate``'s arguments."""
    from .config import MAX_SEED

    return dict(prompt=None if prompt is None else page_text(prompt, "Prompt"),
                class_id=None if class_id is None else page_number(class_id, "Class", 0, 1 << 24, integer=True),
                cfg_scale=page_number(guidance_scale, "Guidance scale", 0, 100),
                steps=page_number(steps, "Steps", 1, 10_000, integer=True),
                seed=page_number(0 if seed is None else seed, "Seed", 0, MAX_SEED, integer=True),
                num=page_number(num_samples, "Samples", 1, 64, integer=True))


def _generate_tab(gr, explorer: Explorer, status):
    pipe = explorer.pipeline
    dc, dcfg = pipe.dit.config, pipe.config.diffusion
    classes = list(pipe.config.classes) or [str(i) for i in range(dc.num_classes)] if dc.condition == "class" else []
    default_steps = dcfg.default_steps(dcfg.default_sampler)
    with gr.Tab("Generate", id="generate-tab"):
        if dc.condition == "text":
            prompt = gr.Textbox(label="Prompt", lines=2, max_length=2000, elem_id="prompt")
            klass = gr.State(None)
        else:
            prompt = gr.State(None)
            klass = gr.Dropdown(choices=[(name, i) for i, name in enumerate(classes)], value=0 if classes else None,
                                label="Class", elem_id="class", visible=dc.condition == "class")
        with gr.Row():
            cfg = gr.Slider(1.0, 10.0, value=float(dcfg.cfg_scale), step=0.25, label="Guidance scale", elem_id="cfg")
            steps = gr.Slider(1, max(250, default_steps), value=default_steps, step=1,
                              label=f"Steps ({dcfg.default_sampler})", elem_id="steps")
            seed = gr.Number(value=0, precision=0, label="Seed", elem_id="seed")
            num = gr.Slider(1, 16, value=4, step=1, label="Samples", elem_id="num")
        btn = gr.Button("Generate", variant="primary", elem_id="generate")
        gallery = gr.Gallery(label="samples", columns=4, format="png", elem_id="samples", elem_classes="textok-img",
                             **_no_share(gr, gr.Gallery))
        took = gr.Markdown("", elem_id="generate-time")

    def generate(prompt, class_id, guidance_scale, steps, seed, num_samples):
        """Samples from the DiT: a prompt (text-conditional) or a class id (class-conditional).

        Parameters:
            prompt: the prompt of a text-conditional DiT (ignored by a class-conditional one)
            class_id: the class of a class-conditional DiT
            guidance_scale: classifier-free guidance scale
            steps: sampler steps
            seed: the random seed (same seed, same samples)
            num_samples: how many samples
        """
        r = explorer.generate(**generate_arguments(prompt, class_id, guidance_scale, steps, seed, num_samples))
        return (r["images"], f"{len(r['images'])} samples in **{r['seconds']:.2f} s** ({r['steps']} {r['sampler']} "
                             f"steps, guidance {r['cfg_scale']:g})", "")

    handler = _guarded(generate, 2)
    btn.click(handler, inputs=[prompt, klass, cfg, steps, seed, num], outputs=[gallery, took, status],
              api_name=API_NAMES["generate"], concurrency_limit=1, concurrency_id="dit")
    return handler


def host_warning(host: str) -> str | None:
    """A one-line warning when ``host`` reaches beyond this machine (the page has no password and no
    TLS), else None. A host name other than ``localhost`` counts as beyond: it may name any interface."""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if loopback:
        return None
    return (f"textok app: warning: bound to {host}, not 127.0.0.1: anyone who can reach this machine on the port "
            "can use the page and its API (no password, no TLS); --host 127.0.0.1 keeps it on this machine")


def launch(explorer: Explorer | None, host: str = "127.0.0.1", port: int | None = 7860,
           max_bytes: int = DEFAULT_MAX_BYTES, max_pixels: int = DEFAULT_MAX_PIXELS, quiet: bool = False,
           block: bool = True, scenes: SceneExplorer | None = None):
    """Build the page (``build_app``: ``explorer``'s tab and ``scenes``' tab) and serve it: until interrupted
    (``block``), or in the background, returning the running ``Blocks`` (``demo.local_url``; ``demo.close()``
    stops it)."""
    gr = import_gradio()
    warning = host_warning(host)
    if warning:
        print(warning, file=sys.stderr, flush=True)
    demo = build_app(explorer, max_bytes, max_pixels, scenes=scenes)
    demo.queue(default_concurrency_limit=1, max_size=32)
    # Gradio's own start-up lines are silenced (quiet): they suggest `share=True`, a public tunnel
    # this page never opens. The address is printed below instead.
    kwargs = dict(server_name=host, server_port=port, share=False, inbrowser=False, max_file_size=max_bytes,
                  show_error=True, quiet=True, prevent_thread_lock=True, ssr_mode=False, pwa=False, mcp_server=False,
                  footer_links=[], show_api=False, **_style(gr))
    # Gradio checks its own server with httpx at start-up; those request lines say nothing to the user
    logging.getLogger("httpx").setLevel(max(logging.getLogger("httpx").getEffectiveLevel(), logging.WARNING))
    demo.launch(**{k: v for k, v in kwargs.items() if _accepts(demo.launch, k)})  # options older Gradio lacks
    # Gradio builds uvicorn's config without a keep-alive option; each new connection reads it from there
    server_config = getattr(getattr(demo, "server", None), "config", None)
    if server_config is not None:
        server_config.timeout_keep_alive = KEEP_ALIVE_S
    if not quiet:
        print(f"textok app: serving on {demo.local_url} (Ctrl-C stops it)", flush=True)
    if block:
        demo.block_thread()
    return demo


__all__ = ["build_app", "launch", "import_gradio", "host_warning", "guide_markdown", "tokens_markdown",
           "metrics_markdown", "swap_markdown", "sweep_markdown", "page_text", "page_number", "generate_arguments",
           "adherence_markdown", "scene_generate_markdown", "scenes_guide_markdown", "scene_menu_values",
           "scene_from_menus", "scene_field", "API_NAMES", "KEEP_ALIVE_S"]
