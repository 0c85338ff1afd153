"""Captioning a folder of images with a local image-to-text model (``textok caption``).

``caption_folder(root, model_path)`` writes ``root/captions.jsonl`` with a local Hugging Face
image-to-text model (BLIP, VisionEncoderDecoder, ...). Resumable: files that already have a
caption are skipped; the file is rewritten atomically every ``save_every`` images, so a crash
loses at most that many captions. Nothing is downloaded: ``model_path`` must be a folder.
``transformers`` is imported only when a model is loaded.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import torch

from ..io import atomic_path
from .formats import (CAPTIONS_FILE, IMAGE_EXTENSIONS, RESERVED_DIRS, BadSampleReport, check_on_bad_sample,
                      json_lines)
from .transforms import ImageError, load_image

log = logging.getLogger(__name__)


def load_captioner(model_path: str | os.PathLike, device: str = "cpu"):
    """A local HF image-to-text model -> ``(model, image_processor, tokenizer)``."""
    import transformers  # optional until a model is loaded

    path = Path(model_path).expanduser()
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"captioning model: {path} is not a Hugging Face model folder (no config.json). "
            "Nothing is downloaded; give a local folder (e.g. a BLIP or VisionEncoderDecoder checkpoint)."
        )
    config = transformers.AutoConfig.from_pretrained(path, local_files_only=True)
    if config.model_type == "vision-encoder-decoder":
        model_cls = transformers.VisionEncoderDecoderModel
    else:
        model_cls = getattr(transformers, "AutoModelForImageTextToText", None) or transformers.AutoModelForVision2Seq
    try:
        model = model_cls.from_pretrained(path, local_files_only=True)
    except ValueError as e:
        raise ValueError(f"{path}: not an image-to-text model ({config.model_type}): {e}") from None
    image_processor = transformers.AutoImageProcessor.from_pretrained(path, local_files_only=True)
    tokenizer = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
    return model.eval().to(device), image_processor, tokenizer


def _read_existing(path: Path) -> tuple[list[bytes], dict[str, dict]]:
    """An existing captions.jsonl: its lines, kept verbatim (this command did not write them, so
    it must not drop the ones it cannot read), and its entries with a non-empty caption, by file."""
    lines: list[bytes] = []
    entries: dict[str, dict] = {}
    if path.is_file():
        lines = [raw for raw in path.read_bytes().split(b"\n") if raw.strip()]
        report = BadSampleReport()
        for _, obj in json_lines(path, report):
            if isinstance(obj.get("file"), str) and isinstance(obj.get("caption"), str) and obj["caption"].strip():
                entries.setdefault(obj["file"], obj)
        if report.num_bad:
            log.warning("%s: %d unreadable line(s) kept as they are (first: %s)", path, report.num_bad,
                        "; ".join(f"{w}: {r}" for w, r in report.bad[:1]))
    return lines, entries


def _write_captions(path: Path, lines: list[bytes], new: dict[str, dict]) -> None:
    """``lines`` unchanged, except an entry of a newly captioned file (it had no caption), which
    gets its caption; the other new entries are appended. Written atomically."""
    new = dict(new)
    out = []
    for raw in lines:
        try:
            obj = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            obj = None
        if isinstance(obj, dict) and isinstance(obj.get("file"), str) and obj["file"] in new:
            raw = json.dumps({**obj, **new.pop(obj["file"])}, ensure_ascii=False).encode("utf-8")
        out.append(raw)
    out += [json.dumps(e, ensure_ascii=False).encode("utf-8") for e in new.values()]
    with atomic_path(path) as tmp:
        tmp.write_bytes(b"".join(line + b"\n" for line in out))


def list_images(root: Path) -> list[str]:
    """Image files below ``root`` (by extension; hidden files skipped), as sorted relative paths."""
    files = []
    for p in root.rglob("*"):
        rel = p.relative_to(root)
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not any(
            part.startswith(".") or part in RESERVED_DIRS for part in rel.parts
        ):
            files.append(rel.as_posix())
    return sorted(files)


def caption_folder(root: str | os.PathLike, model_path: str | os.PathLike, batch_size: int = 8,
                   max_new_tokens: int = 40, device: str = "cpu", save_every: int = 256,
                   on_bad_sample: str = "skip", limit: int | None = None):
    """Caption every image below ``root`` that has no caption yet -> ``root/captions.jsonl``.

    Returns a ``BadSampleReport`` (``total`` = images newly attempted); ``on_bad_sample="error"``
    stops at the first unreadable image with ``BadSampleError``.
    """
    check_on_bad_sample(on_bad_sample)
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"image folder not found: {root}")
    out = root / CAPTIONS_FILE
    lines, entries = _read_existing(out)
    todo = [f for f in list_images(root) if f not in entries][:limit]
    captioned: dict[str, dict] = {}
    report = BadSampleReport(where=str(root), total=len(todo))
    if not todo:
        log.info("%s: all %d images already have captions", root, len(entries))
        return report
    model, image_processor, tokenizer = load_captioner(model_path, device)
    log.info("captioning %d images in %s (%d already done)", len(todo), root, len(entries))
    since_save = 0
    for i in range(0, len(todo), batch_size):
        files, images = [], []
        for rel in todo[i : i + batch_size]:
            try:
                images.append(load_image(root / rel))
                files.append(rel)
            except ImageError as e:
                report.handle(rel, e.reason, on_bad_sample, shown=e.name, warn=False)
        if not images:
            continue
        pixel_values = image_processor(images=images, return_tensors="pt")["pixel_values"].to(device)
        with torch.no_grad():
            ids = model.generate(pixel_values=pixel_values, max_new_tokens=max_new_tokens)
        for rel, text in zip(files, tokenizer.batch_decode(ids, skip_special_tokens=True)):
            text = " ".join(text.split())
            if not text:
                report.add(rel, "the model produced an empty caption")
                continue
            captioned[rel] = {"file": rel, "caption": text}
        since_save += len(files)
        if since_save >= save_every:
            _write_captions(out, lines, captioned)
            since_save = 0
    _write_captions(out, lines, captioned)
    return report


__all__ = ["caption_folder", "load_captioner", "list_images"]
