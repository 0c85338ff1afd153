"""Generation evaluation: gFID of an ADM sample batch (``arr_0`` uint8 [N, H, W, 3]) against reference statistics,
precision/recall (k = 3) when the reference keeps its features or images, IS with classifier weights, CLIP score
with captions and a CLIP model folder. The report states the sample count: FID at small N is biased upward and only
comparable at equal N."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .fid import Stats, frechet_distance_to_features, load_images_npz, reference_stats
from .inception import InceptionFeatures
from .inception_score import InceptionLogits, inception_score
from .prdc import precision_recall
from .reference import FID_PROTOCOL
from .report import fid_note, status, write_report

log = logging.getLogger(__name__)


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
    status(progress, f"eval-generation: FID of {features.shape[0]} samples ({fid_note(features.shape[0])}) ...")
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
        write_report(Path(out), "eval_generation", report)
    return report


__all__ = ["evaluate_generation", "generation_markdown", "load_captions"]
