"""Fixtures of the generation tests: a tiny labelled image folder and a tiny tokenizer."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from textok import TexTok, TexTokConfig


def make_dataset(root, n=12, classes=3):
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    lines = []
    for i in range(n):
        Image.fromarray((rng.random((32, 32, 3)) * 255).astype(np.uint8)).save(root / f"img{i:02d}.png")
        lines.append(json.dumps({"file": f"img{i:02d}.png", "caption": f"a thing of kind {i % classes}",
                                 "label": i % classes, "class": f"kind{i % classes}"}))
    (root / "captions.jsonl").write_text("\n".join(lines) + "\n")
    return root


def make_tokenizer(path, text_in="none"):
    cfg = TexTokConfig.from_preset("textok-mini-32", width=32, depth=1, heads=4, num_tokens=8, max_text_tokens=16,
                                   text_in=text_in)
    torch.manual_seed(0)
    TexTok(cfg).save_pretrained(path)
    return path


@pytest.fixture(scope="session", name="make_dataset")
def _make_dataset():
    return make_dataset


@pytest.fixture(scope="session", name="make_tokenizer")
def _make_tokenizer():
    return make_tokenizer
