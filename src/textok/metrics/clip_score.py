"""CLIP score of images against their captions, with a CLIP model from a local folder.

``score = 100 * max(cos(image_embedding, text_embedding), 0)`` per pair, averaged: the
convention of torchmetrics' ``CLIPScore`` and of the text-to-image papers that report "CLIP
score" on a 0-100 scale (Hessel et al.'s CLIPScore is 2.5 * max(cos, 0), i.e. 1/40 of it).

The folder is a Hugging Face ``CLIPModel`` (``config.json`` + weights, tokenizer files and,
optionally, ``preprocessor_config.json``; e.g. a saved ``openai/clip-vit-large-patch14``).
Nothing is fetched from a hub. Images are preprocessed by transformers' CLIP image processor
(PIL backend: bicubic resize of the short side, centre crop, CLIP normalisation). No CLIP
weights exist offline here: the tests use a tiny randomly initialised ``CLIPModel``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from .image import quantize


def _image_processor(folder: Path, image_size: int):
    try:  # transformers >= 5: the PIL backend (the default one needs torchvision)
        from transformers import CLIPImageProcessorPil as Processor
    except ImportError:
        from transformers import CLIPImageProcessor as Processor
    if (folder / "preprocessor_config.json").is_file():
        return Processor.from_pretrained(folder)
    return Processor(size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size})


def _pooled(output) -> torch.Tensor:
    # transformers 4 returns the projected embeddings; 5 returns an output whose pooler_output holds them
    return output if isinstance(output, torch.Tensor) else output.pooler_output


class CLIPScorer:
    """``CLIPScorer.from_pretrained(folder)(images, captions) -> [B]`` per-pair scores (0-100).

    images: [B, 3, H, W] uint8 or float in [-1, 1], or uint8 numpy [B, H, W, 3].
    """

    def __init__(self, model, tokenizer, processor, device: str | torch.device = "cpu"):
        self.model = model.to(device).eval()
        self.tokenizer, self.processor, self.device = tokenizer, processor, torch.device(device)
        self.max_length = int(model.config.text_config.max_position_embeddings)

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike, device: str | torch.device = "cpu") -> "CLIPScorer":
        from transformers import AutoTokenizer, CLIPModel

        folder = Path(folder)
        if not (folder / "config.json").is_file():
            raise FileNotFoundError(f"{folder}: not a Hugging Face CLIP model folder (no config.json)")
        import transformers

        from ..text import _no_progress_bar

        with _no_progress_bar(transformers):  # no "Loading weights" bar between the evaluation's bars
            model = CLIPModel.from_pretrained(folder)
            tokenizer = AutoTokenizer.from_pretrained(folder)
        return cls(model, tokenizer, _image_processor(folder, model.config.vision_config.image_size), device)

    @torch.no_grad()
    def cosine(self, images, captions: Sequence[str]) -> torch.Tensor:
        """Cosine similarity of each image with its caption: [B] float32."""
        pixels = quantize(images).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()  # [B, H, W, 3]
        if len(captions) != len(pixels):
            raise ValueError(f"got {len(captions)} captions for {len(pixels)} images")
        pixel_values = self.processor(images=list(pixels), return_tensors="pt")["pixel_values"].to(self.device)
        text = self.tokenizer(list(captions), padding=True, truncation=True, max_length=self.max_length,
                              return_tensors="pt").to(self.device)
        img = _pooled(self.model.get_image_features(pixel_values=pixel_values))
        txt = _pooled(self.model.get_text_features(input_ids=text["input_ids"], attention_mask=text["attention_mask"]))
        return torch.nn.functional.cosine_similarity(img.float(), txt.float(), dim=-1).cpu()

    def __call__(self, images, captions: Sequence[str]) -> torch.Tensor:
        """Per-pair CLIP scores ``100 * max(cos, 0)``: [B] float32."""
        return 100 * self.cosine(images, captions).clamp(min=0)


def clip_score(images: np.ndarray | torch.Tensor, captions: Sequence[str], model: str | os.PathLike | CLIPScorer,
               batch_size: int = 32, device: str | torch.device = "cpu", progress: bool = True) -> float:
    """Mean CLIP score of ``images`` [N, ...] against ``captions`` [N] (see ``CLIPScorer``)."""
    scorer = model if isinstance(model, CLIPScorer) else CLIPScorer.from_pretrained(model, device)
    if len(images) != len(captions):
        raise ValueError(f"got {len(captions)} captions for {len(images)} images")
    scores = [scorer(images[i : i + batch_size], captions[i : i + batch_size])
              for i in tqdm(range(0, len(images), batch_size), desc="clip score", disable=not progress, leave=False)]
    return float(torch.cat(scores).double().mean())
