"""Tokenizer evaluation: ``evaluate_tokenizer`` reconstructs ``num`` evenly spaced images of a split with one or
more TexTok checkpoints and reports rFID, PSNR, SSIM, LPIPS (and rIS when Inception classifier weights are given)
side by side, as a Markdown table, a JSON file and a reconstruction grid. Every image is decoded with its own
caption, or with another one (``decode_captions``: ``textok.metrics.caption_swap``). The report states the image
count and the preprocessing: FID at small N is biased upward and only comparable at equal N."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ..conditioning import TextConditioner
from ..config import with_fields
from ..losses import LPIPS
from ..tokenizer import CaptionedTokenizer, load_tokenizer
from .caption_swap import decode_map as _decode_map
from .fid import Stats, frechet_distance_to_features
from .image import psnr, ssim
from .inception import InceptionFeatures
from .inception_score import InceptionLogits, inception_score
from .reference import CROP_PROTOCOL, FID_PROTOCOL, OriginalStats, as_uint8, hash_pixels, iterate_batches, open_split
from .report import fid_note, status, write_report

log = logging.getLogger(__name__)


def _checkpoint_name(checkpoint, index: int) -> str:
    if isinstance(checkpoint, (str, os.PathLike)):
        p = Path(checkpoint).resolve()
        return f"{p.parent.name}/{p.name}" if p.parent.name else p.name
    return f"model{index}"


def _fmt(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def tokenizer_markdown(report: dict) -> str:
    """The side-by-side Markdown table of an ``evaluate_tokenizer`` report."""
    has_is = any(r.get("ris") is not None for r in report["results"])
    has_lpips = any(r.get("lpips") is not None for r in report["results"])
    lines = [
        f"Tokenizer reconstruction on {report['num']} images of `{report['data']}` (split `{report['split']}`); "
        f"{report['crop']}; reconstructions rounded to uint8 before scoring. "
        + (f"rFID: {report['num']} reconstructions vs the same {report['num']} originals ({report['features']}); "
           "FID at small N is biased upward: compare only at equal N." if report.get("features")
           else "rFID not computed (Inception skipped)."),
        *([f"Decoded with other captions than encoded with (`{report['decode_captions']}`): "
           + ", ".join(f"{r['name']} {r.get('decode_swapped', 0)} of {r['num']} images" for r in report["results"])
           + " got another caption."] if report.get("decode_captions") else []),
        "",
        "| checkpoint | px | tokens | rFID ↓ | PSNR ↑ | SSIM ↑ |" + (" LPIPS ↓ |" if has_lpips else "")
        + (" rIS ↑ |" if has_is else "") + " img/s |",
        "|---|---|---|---|---|---|" + ("---|" if has_lpips else "") + ("---|" if has_is else "") + "---|",
    ]
    for r in report["results"]:
        row = (f"| {r['name']} | {r['image_size']} | {r['tokens']} | {_fmt(r['rfid'], 2)} | {_fmt(r['psnr'], 2)} "
               f"| {_fmt(r['ssim'], 4)} |")
        if has_lpips:
            row += f" {_fmt(r.get('lpips'), 4)} |"
        if has_is:
            row += f" {_fmt(r.get('ris'), 2)} |"
        lines.append(row + f" {r['images_per_second']:.1f} |")
    return "\n".join(lines) + "\n"


@dataclasses.dataclass
class _Scorers:
    """The networks that score reconstructions, loaded once for all checkpoints."""

    features: InceptionFeatures | None  # None: no rFID (PSNR / SSIM / LPIPS only)
    logits: InceptionLogits | None  # rIS
    lpips: torch.nn.Module | None


def _load_scorers(extractor: InceptionFeatures | None, inception_logits, lpips: bool, device,
                  progress: bool, rfid: bool = True) -> _Scorers:
    load_inception = rfid and extractor is None
    if load_inception or lpips:
        status(progress, "eval-tokenizer: loading " + " and ".join(
            (["the Inception network (FID features)"] if load_inception else []) + (["LPIPS (VGG16)"] if lpips else []))
            + " ...")
    if not rfid:
        return _Scorers(None, None, LPIPS().to(device).eval() if lpips else None)
    extractor = extractor or InceptionFeatures(device=device)
    head = InceptionLogits.resolve(inception_logits, extractor)
    return _Scorers(extractor, head.to(device) if head is not None else None,
                    LPIPS().to(device).eval() if lpips else None)


@dataclasses.dataclass
class _Pass:
    """What one checkpoint's pass over the images collects."""

    n: int = 0
    psnr: list = dataclasses.field(default_factory=list)
    ssim: list = dataclasses.field(default_factory=list)
    lpips: list = dataclasses.field(default_factory=list)
    rec_features: list = dataclasses.field(default_factory=list)
    orig_features: list = dataclasses.field(default_factory=list)  # only where no reference statistics exist
    logits: list = dataclasses.field(default_factory=list)
    grid_orig: list = dataclasses.field(default_factory=list)
    grid_rec: list = dataclasses.field(default_factory=list)
    pixels: "hashlib._Hash" = dataclasses.field(default_factory=hashlib.sha256)  # of the originals, as uint8
    swapped: int = 0  # images decoded with another caption than they were encoded with


def _reconstruction_pass(tok: CaptionedTokenizer, dataset, num: int | None, batch_size: int, scorers: _Scorers,
                         need_originals: bool, grid_images: int, name: str, progress: bool,
                         decode_map: dict[str, str] | None = None) -> _Pass:
    """Reconstruct ``num`` images of ``dataset`` with ``tok`` and collect per-image scores,
    Inception features (of the originals too when ``need_originals``) and the grid's first images.
    ``decode_map``: the caption each image is decoded with, by the caption it was encoded with (or a list of
    candidates, of which each image gets the one that best explains its tokens: ``choose_captions``)."""
    out = _Pass()
    total = num if num is not None else (len(dataset) if hasattr(dataset, "__len__") else None)
    with tqdm(total=total, desc=f"eval {name}", unit="img", disable=not progress, leave=False) as bar:
        for batch in iterate_batches(dataset, num, batch_size):
            x, captions = batch["images"].to(tok.device), batch["captions"]
            if decode_map is not None and tok.uses_text and tok.config.text_in_decoder:
                tokens = tok.encode(x, captions)
                swap = [decode_map.get(c, c) for c in captions]
                if any(isinstance(c, list) for c in swap):
                    swap = tok.choose_captions(tokens, [c if isinstance(c, list) else [c] for c in swap])
                out.swapped += sum(a != b for a, b in zip(swap, captions))
                rec = tok.decode(tokens, swap)
            else:
                rec = tok.reconstruct(x, captions)
            x8, rec8 = as_uint8(x), as_uint8(rec)
            hash_pixels(out.pixels, x8)
            out.psnr.append(psnr(x8, rec8).cpu())
            out.ssim.append(ssim(x8, rec8).cpu())
            if scorers.lpips is not None:  # on the quantised images, back in [-1, 1]
                d = scorers.lpips(x8.float() / 127.5 - 1.0, rec8.float() / 127.5 - 1.0)
                out.lpips.append(d.double().cpu())
            if scorers.features is not None:
                f_rec = scorers.features(rec8)
                out.rec_features.append(f_rec.double().cpu().numpy())
                if need_originals:
                    out.orig_features.append(scorers.features(x8).double().cpu().numpy())
                if scorers.logits is not None:
                    out.logits.append(scorers.logits(f_rec).cpu())
            if out.n < grid_images:
                out.grid_orig.append(x8[: grid_images - out.n].cpu())
                out.grid_rec.append(rec8[: grid_images - out.n].cpu())
            out.n += x.shape[0]
            bar.update(x.shape[0])
    return out


def _result(name: str, checkpoint, model, scores: _Pass, rfid: float | None, seconds: float) -> dict:
    """One checkpoint's row of the report."""
    n = scores.n
    result = {
        "name": name,
        "checkpoint": str(checkpoint) if isinstance(checkpoint, (str, os.PathLike)) else None,
        "image_size": model.config.image_size,
        "tokens": model.config.num_tokens,
        "text_in": model.config.text_in,
        "num": n,
        "rfid": rfid,
        "psnr": float(torch.cat(scores.psnr).mean()),
        "ssim": float(torch.cat(scores.ssim).mean()),
        "lpips": float(torch.cat(scores.lpips).mean()) if scores.lpips else None,
        "ris": None,
        "ris_std": None,
        "seconds": seconds,
        "images_per_second": n / seconds,
        "decode_swapped": scores.swapped,
    }
    if scores.logits:
        result["ris"], result["ris_std"] = inception_score(torch.cat(scores.logits), splits=min(10, n))
    return result


@dataclasses.dataclass
class TokenizerEvalSettings:
    """What ``evaluate_tokenizer`` measures, on which images and how: one field per ``textok eval-tokenizer`` flag.

    ``evaluate_tokenizer(checkpoints, data, TokenizerEvalSettings(split="val", rfid=False))``; the same fields
    are accepted as keyword arguments (``evaluate_tokenizer(checkpoints, data, split="val", rfid=False)``), which
    is how callers of the older 18-parameter signature keep working.
    """

    split: str = "val"
    num: int | None = None  # evenly spaced images of the split (all when None)
    batch_size: int = 32
    device: str | torch.device = "cpu"
    # which form of the captions the models see (textok.data.captions; a model trained on
    # data.caption_variant=class is evaluated with "class")
    caption_variant: str = "full"
    names: Sequence[str] | None = None  # display names, one per checkpoint (default: the folders' names)
    lpips: bool = True  # LPIPS with textok.losses.LPIPS (VGG, v0.1)
    # rFID (and rIS); False skips the Inception network, the costly part on a CPU (PSNR / SSIM / LPIPS only)
    rfid: bool = True
    inception_logits: str | os.PathLike | InceptionLogits | None = None  # torch-fidelity weights, for rIS
    # decode every image with another caption than it was encoded with, to measure how much the detokenizer
    # relies on the caption: "same-class", "same-class-random", "same-class-cycle" or "other-class"
    # (decode_caption_map), or a mapping (dict or JSON file) caption -> caption, or caption -> candidate captions
    # of which each image gets the one that best explains its tokens (captions not in it keep their own). Models
    # without text in the detokenizer are unaffected; decode_swapped in each result counts the swapped images.
    decode_captions: str | os.PathLike | dict | None = None
    grid_images: int = 8  # originals and reconstructions in reconstructions.png
    progress: bool = True


@torch.no_grad()
def evaluate_tokenizer(checkpoints, data, settings: TokenizerEvalSettings | None = None, *,
                       out: str | os.PathLike | None = None, reference: Stats | str | os.PathLike | None = None,
                       extractor: InceptionFeatures | None = None, encoder=None, **fields) -> dict:
    """Reconstruction metrics of one or more tokenizers on the same images.

    Args:
        checkpoints: a tokenizer folder, Hub repo id, ``TexTok`` or ``CaptionedTokenizer``, or a list of them.
        data: dataset folder (opened with ``textok.data.open_dataset(root, split, image_size,
            train=False)``: the ADM centre crop at each checkpoint's resolution) or a dataset of
            item dicts already built.
        settings: ``TokenizerEvalSettings`` (default: its defaults); ``**fields`` override its fields.
        out: folder for ``eval_tokenizer.json``, ``eval_tokenizer.md`` and ``reconstructions.png``
            (originals on the top row, one row per checkpoint below).
        reference: Inception statistics of exactly these originals (``dataset_stats`` with the
            same split, ``num`` and image size, or the path of its ``.npz``), to skip recomputing
            them on every call. Checked after the first pass (``check_reference``): image count,
            and where its ``info`` records them, the images' and the network's SHA-256.
        extractor: an Inception feature network already loaded (default: loaded here).
        encoder: a text encoder / text cache to use instead of each model's own encoder (not with a
            ``CaptionedTokenizer``, which has its own).
    Returns:
        dict with ``num``, ``data``, ``split``, the protocol strings, ``results`` (one dict per
        checkpoint: rfid, psnr, ssim, lpips, ris, ris_std, tokens, seconds, ...) and ``markdown``.
    """
    s = with_fields(settings or TokenizerEvalSettings(), "evaluate_tokenizer", fields)
    num, split, device, progress, rfid = s.num, s.split, s.device, s.progress, s.rfid
    decode_captions = s.decode_captions
    if isinstance(checkpoints, (str, os.PathLike, torch.nn.Module, CaptionedTokenizer)):
        checkpoints = [checkpoints]
    checkpoints = list(checkpoints)
    if not checkpoints:
        raise ValueError("no checkpoint to evaluate")
    names = list(s.names) if s.names else [_checkpoint_name(c, i) for i, c in enumerate(checkpoints)]
    if len(names) != len(checkpoints):
        raise ValueError(f"got {len(names)} names for {len(checkpoints)} checkpoints")
    decode_map = None  # built once, from the first checkpoint's dataset (captions do not depend on the size)
    scorers = _load_scorers(extractor, s.inception_logits, s.lpips, device, progress, rfid)

    # the originals' statistics by image size (a given reference is of no use without rFID)
    originals = OriginalStats(reference, data, split, num, scorers.features) if rfid else None
    conditioners: dict[tuple, TextConditioner] = {}  # (encoder, max_text_tokens) -> shared by checkpoints
    grid_rows: list[torch.Tensor] = []  # originals, then one row per checkpoint
    results, count = [], None
    for name, checkpoint in zip(names, checkpoints):
        status(progress, f"eval-tokenizer: loading {name} ...")
        tok = _tokenizer(checkpoint, device, encoder, conditioners, data)
        size = tok.config.image_size
        need_originals = originals is not None and originals.needs_features(size)
        dataset = open_split(data, split, size, s.caption_variant)
        if decode_captions is not None and decode_map is None:
            decode_map = _decode_map(decode_captions, dataset, num)
        started = time.perf_counter()
        scores = _reconstruction_pass(tok, dataset, num, s.batch_size, scorers, need_originals, s.grid_images, name,
                                      progress, decode_map)
        n = scores.n
        if n < 2 and rfid:
            raise ValueError(f"{data} [{split}]: need at least 2 images for FID, got {n}")
        if n == 0:
            raise ValueError(f"{data} [{split}]: no image to evaluate")
        if count is not None and n != count:
            raise ValueError(f"checkpoint {name} saw {n} images, the previous ones {count}")
        count = n
        if originals is not None:
            originals.record(size, n, scores.pixels.hexdigest(), scores.orig_features)
        if not results and scores.grid_orig:
            grid_rows.append(torch.cat(scores.grid_orig))
        if scores.grid_rec:
            grid_rows.append(torch.cat(scores.grid_rec))
        value = None
        if rfid:
            status(progress, f"eval-tokenizer: {name}: rFID over {n} images ({fid_note(n)}) ...")
            value = frechet_distance_to_features(*originals[size], np.concatenate(scores.rec_features))
        result = _result(name, checkpoint, tok, scores, value, time.perf_counter() - started)
        results.append(result)
        log.info("%s: rFID %s PSNR %.3f SSIM %.4f (%d images, %.1fs)", name, _fmt(value, 3), result["psnr"],
                 result["ssim"], n, result["seconds"])

    report = {
        "num": count,
        "data": str(data) if isinstance(data, (str, os.PathLike)) else type(data).__name__,
        "split": split,
        "crop": CROP_PROTOCOL,
        "features": FID_PROTOCOL if rfid else None,
        "quantisation": "reconstructions clamped to [-1, 1] and rounded to uint8 before every metric",
        "lpips": "textok.losses.LPIPS (VGG16, v0.1 linear layers)" if s.lpips else None,
        "results": results,
        # the rule or file decoding used (a mapping given in Python is recorded as such)
        "decode_captions": None if decode_captions is None else (
            str(decode_captions) if isinstance(decode_captions, (str, os.PathLike)) else "mapping"),
    }
    report["markdown"] = tokenizer_markdown(report)
    if out is not None:
        write_report(Path(out), "eval_tokenizer", report)
        _write_grid(Path(out) / "reconstructions.png", grid_rows)
    return report


def _tokenizer(checkpoint, device, encoder, conditioners: dict, data) -> CaptionedTokenizer:
    """``checkpoint`` as a ``CaptionedTokenizer`` whose captions are embedded as in training: with ``encoder``
    if given, else a ``TextConditioner`` of the data set's text cache (where it is exact) and the model's
    encoder, shared by the checkpoints of one (encoder, max_text_tokens) so that the cache loads once."""
    if isinstance(checkpoint, CaptionedTokenizer):
        if encoder is not None:
            raise ValueError("encoder= cannot change a CaptionedTokenizer's text: build it with its text")
        return load_tokenizer(checkpoint, device)
    config = checkpoint.config if isinstance(checkpoint, torch.nn.Module) else CaptionedTokenizer.load_config(checkpoint)
    text = encoder
    if text is None and config.text_in != "none":
        key = (config.text_encoder, config.max_text_tokens)
        if key not in conditioners:
            root = str(data) if isinstance(data, (str, os.PathLike)) else None
            conditioners[key] = TextConditioner(*key, root, use_cache=root is not None)
        text = conditioners[key]
    return load_tokenizer(checkpoint, device, text=text)


def _write_grid(path: Path, rows: list[torch.Tensor]) -> None:
    if not rows:
        return
    from ..data.transforms import make_grid, to_pil
    from ..io import atomic_path

    size = max(r.shape[-1] for r in rows)
    rows = [torch.nn.functional.interpolate(r.float(), size=size, mode="nearest") if r.shape[-1] != size else r.float()
            for r in rows]
    images = torch.cat(rows) / 127.5 - 1.0
    with atomic_path(path) as tmp:
        to_pil(make_grid(images, nrow=rows[0].shape[0])).save(tmp, format="PNG")


__all__ = ["evaluate_tokenizer", "TokenizerEvalSettings", "tokenizer_markdown"]
