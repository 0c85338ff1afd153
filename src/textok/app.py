"""``textok app``: a local Gradio page over ``textok.explore`` (a thin layer: no logic here).

Tabs: Reconstruct (original | baseline | TexTok with PSNR and LPIPS), Swap the caption (the
same tokens decoded with another caption, and the difference), Tokens (every N side by side)
and Generate (with ``--dit``). The page binds to 127.0.0.1 by default, sends no analytics,
loads nothing from the internet, refuses oversized uploads before decoding them, and runs
one request at a time per model set (Gradio queue, concurrency 1).

Gradio is an optional dependency (``pip install -e '.[app]'``), imported only when the page is
built.
"""

from __future__ import annotations

import html
import inspect
import logging
import os
from pathlib import Path
from typing import Sequence

from .explore import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_PIXELS,
    Example,
    Explorer,
    UploadError,
    bundled_examples,
    load_upload,
)

log = logging.getLogger(__name__)

DISPLAY_SIZE = 256  # small images are shown upscaled (nearest neighbour) to this many pixels
CSS = """
.textok-img img { image-rendering: pixelated; }
#status .error, #status p.error { color: #b91c1c; font-weight: 600; }
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


def _show(img):
    """Upscale a small image for display (nearest neighbour: the pixels stay visible)."""
    if img is None:
        return None
    from PIL import Image

    w, h = img.size
    scale = max(1, DISPLAY_SIZE // max(w, h))
    return img.resize((w * scale, h * scale), Image.NEAREST) if scale > 1 else img


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


def _error(e: Exception) -> str:
    return f'<p class="error">⚠ {html.escape(str(e))}</p>'


def build_app(explorer: Explorer, max_bytes: int = DEFAULT_MAX_BYTES, max_pixels: int = DEFAULT_MAX_PIXELS,
              examples: Sequence[Example] | None = None):
    """The Gradio ``Blocks`` over ``explorer`` (not launched; see ``launch``)."""
    gr = import_gradio()
    examples = list(bundled_examples() if examples is None else examples)
    by_name = {e.name: e for e in examples}
    counts = explorer.token_counts

    def source(upload, example):
        if upload:
            return load_upload(upload, max_bytes, max_pixels, name=Path(upload).name)
        if example in by_name:
            return load_upload(by_name[example].path, max_bytes, max_pixels)
        raise UploadError("no image: upload one or pick an example")

    def guarded(fn, n_outputs):
        """Bad input (or any failure) -> empty outputs and a message in the status line; the page stays up."""
        def run(*args):
            try:
                return (*fn(*args), "")
            except (UploadError, ValueError) as e:
                return (*([None] * n_outputs), _error(e))
            except Exception as e:  # noqa: BLE001 - the page must survive anything
                log.exception("request failed")
                return (*([None] * n_outputs), _error(f"internal error: {type(e).__name__}: {e}"))
        return run

    def on_reconstruct(upload, example, caption, n):
        r = explorer.reconstruct(source(upload, example), caption, int(n))
        im = r["images"]
        return _show(im["original"]), _show(im.get("baseline")), _show(im.get("TexTok")), metrics_markdown(r)

    def on_swap(upload, example, caption, other, n):
        r = explorer.swap(source(upload, example), caption, other, int(n))
        im = r["images"]
        return _show(im["reconstruction"]), _show(im["swapped"]), _show(im["difference"]), swap_markdown(r)

    def on_sweep(upload, example, caption):
        results = explorer.sweep(source(upload, example), caption)
        gallery = [(_show(results[0]["images"]["original"]), "original")]
        for r in results:
            for label in ("baseline", "TexTok"):
                if label in r["images"]:
                    gallery.append((_show(r["images"][label]), f"N={r['n']} {label}: {_fmt(r['psnr'][label], 'psnr')} dB"))
        return gallery, sweep_markdown(results)

    style_in_launch = _accepts(gr.Blocks.launch, "css")  # Gradio 6 moved theme and css to launch()
    image_kw, gallery_kw = _no_share(gr, gr.Image), _no_share(gr, gr.Gallery)
    with gr.Blocks(title="TexTok: what the caption does", analytics_enabled=False,
                   **({} if style_in_launch else _style(gr))) as demo:
        gr.Markdown("## TexTok: what the caption does\n" + html.escape(explorer.describe()))
        with gr.Row():
            upload = gr.File(label="Upload an image", file_types=["image"], type="filepath", elem_id="upload")
            with gr.Column():
                example = gr.Dropdown(choices=list(by_name), value=None, label="…or a held-out example",
                                      elem_id="example")
                caption = gr.Textbox(label="Caption (empty is fine; long ones are cut as in training)", lines=2,
                                     max_length=2000, elem_id="caption")
                n_tokens = gr.Radio(choices=[str(n) for n in counts], value=str(counts[-1]),
                                    label="Tokens N (which checkpoints)", visible=len(counts) > 1, elem_id="n-tokens")
        status = gr.HTML("", elem_id="status")
        with gr.Tabs():
            with gr.Tab("Reconstruct", id="reconstruct-tab"):
                rec_btn = gr.Button("Reconstruct", variant="primary", elem_id="reconstruct")
                with gr.Row():
                    img_orig = gr.Image(label="original", type="pil", interactive=False, elem_id="img-original",
                                        elem_classes="textok-img", **image_kw)
                    img_base = gr.Image(label="baseline (no text)", type="pil", interactive=False,
                                        elem_id="img-baseline", elem_classes="textok-img", **image_kw)
                    img_tex = gr.Image(label="TexTok", type="pil", interactive=False, elem_id="img-textok",
                                       elem_classes="textok-img", **image_kw)
                metrics = gr.Markdown("", elem_id="metrics")
            with gr.Tab("Swap the caption", id="swap-tab"):
                other = gr.Textbox(label="Another caption for the same tokens", lines=2, max_length=2000,
                                   elem_id="other-caption")
                swap_btn = gr.Button("Decode with the other caption", variant="primary", elem_id="swap")
                with gr.Row():
                    img_rec = gr.Image(label="decoded with the caption", type="pil", interactive=False,
                                       elem_id="img-rec", elem_classes="textok-img", **image_kw)
                    img_swap = gr.Image(label="decoded with the other caption", type="pil", interactive=False,
                                        elem_id="img-swapped", elem_classes="textok-img", **image_kw)
                    img_diff = gr.Image(label="difference (stretched)", type="pil", interactive=False,
                                        elem_id="img-diff", elem_classes="textok-img", **image_kw)
                swap_metrics = gr.Markdown("", elem_id="swap-metrics")
            with gr.Tab("Tokens", id="tokens-tab"):
                gr.Markdown(f"Checkpoints at N = {', '.join(map(str, counts))} tokens. The selector above picks "
                            "the N the other tabs use; this tab reconstructs at every N.")
                sweep_btn = gr.Button("Reconstruct at every N", variant="primary", elem_id="sweep")
                sweep_gallery = gr.Gallery(label="reconstructions by N", columns=max(3, 2 * len(counts) + 1),
                                           elem_id="sweep-gallery", elem_classes="textok-img", **gallery_kw)
                sweep_table = gr.Markdown("", elem_id="sweep-metrics")
            if explorer.pipeline is not None:
                on_generate = _generate_tab(gr, explorer, status, guarded)

        example.input(lambda name: (None, by_name[name].caption if name in by_name else gr.update()),
                      inputs=example, outputs=[upload, caption], queue=False)
        upload.upload(lambda f: None, inputs=upload, outputs=example, queue=False)
        common = dict(concurrency_limit=1, concurrency_id="tokenizers")
        rec_btn.click(guarded(on_reconstruct, 4), inputs=[upload, example, caption, n_tokens],
                      outputs=[img_orig, img_base, img_tex, metrics, status], **common)
        swap_btn.click(guarded(on_swap, 4), inputs=[upload, example, caption, other, n_tokens],
                       outputs=[img_rec, img_swap, img_diff, swap_metrics, status], **common)
        sweep_btn.click(guarded(on_sweep, 2), inputs=[upload, example, caption],
                        outputs=[sweep_gallery, sweep_table, status], **common)
    # the event handlers as the page calls them (for tests): outputs + the status line last
    demo.textok_handlers = {"reconstruct": guarded(on_reconstruct, 4), "swap": guarded(on_swap, 4),
                            "sweep": guarded(on_sweep, 2)}
    if explorer.pipeline is not None:
        demo.textok_handlers["generate"] = on_generate
    return demo


def _generate_tab(gr, explorer: Explorer, status, guarded):
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
        gallery = gr.Gallery(label="samples", columns=4, elem_id="samples", elem_classes="textok-img",
                             **_no_share(gr, gr.Gallery))
        took = gr.Markdown("", elem_id="generate-time")

    def on_generate(prompt, klass, cfg, steps, seed, num):
        r = explorer.generate(prompt=prompt, class_id=klass, cfg_scale=cfg, steps=int(steps), seed=int(seed or 0),
                              num=int(num))
        return ([_show(im) for im in r["images"]],
                f"{len(r['images'])} samples in **{r['seconds']:.2f} s** ({r['steps']} {r['sampler']} steps, "
                f"guidance {r['cfg_scale']:g})")

    handler = guarded(on_generate, 2)
    btn.click(handler, inputs=[prompt, klass, cfg, steps, seed, num], outputs=[gallery, took, status],
              concurrency_limit=1, concurrency_id="dit")
    return handler


def launch(explorer: Explorer, host: str = "127.0.0.1", port: int | None = 7860, max_bytes: int = DEFAULT_MAX_BYTES,
           max_pixels: int = DEFAULT_MAX_PIXELS, quiet: bool = False) -> None:
    """Build the page and serve it (blocks until interrupted)."""
    gr = import_gradio()
    demo = build_app(explorer, max_bytes, max_pixels)
    demo.queue(default_concurrency_limit=1, max_size=32)
    kwargs = dict(server_name=host, server_port=port, share=False, inbrowser=False, max_file_size=max_bytes,
                  show_error=True, quiet=quiet, ssr_mode=False, pwa=False, mcp_server=False, footer_links=[],
                  show_api=False, **_style(gr))
    demo.launch(**{k: v for k, v in kwargs.items() if _accepts(demo.launch, k)})  # options older Gradio lacks


__all__ = ["build_app", "launch", "import_gradio", "metrics_markdown", "swap_markdown", "sweep_markdown"]
