"""Fixtures for the metrics tests: a tiny image-caption folder, a tiny CLIP (the feature stand-in,
``tiny_features``, is in tests/conftest.py: the demo's tests use it too)."""

import json

import numpy as np
import pytest
import torch
from PIL import Image



def _smooth_image(rng, size):
    yy, xx = np.mgrid[0:size, 0:size] / size
    f = rng.uniform(1, 4, 3)
    phase = rng.uniform(0, 6, 3)
    img = 127 + 120 * np.sin(f * (xx[..., None] + yy[..., None] * f[::-1]) * 3 + phase)
    return Image.fromarray(img.astype(np.uint8))


@pytest.fixture
def image_folder(tmp_path):
    """6 val + 2 train 40 px images with captions, in textok.data's folder format."""
    root = tmp_path / "data"
    (root / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    colours = ["red", "green", "blue", "yellow", "purple", "orange", "pink", "grey"]
    entries = []
    for i, colour in enumerate(colours):
        name = f"images/{i:02d}.png"
        _smooth_image(rng, 40).save(root / name)
        entries.append({"file": name, "caption": f"a {colour} wavy pattern", "split": "val" if i < 6 else "train"})
    (root / "captions.jsonl").write_text("".join(json.dumps(e) + "\n" for e in entries))
    return root


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory):
    """A randomly initialised CLIPModel and a character-level BPE CLIP tokenizer, saved as an HF folder."""
    from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for word in ["a", "the", "red", "blue", "cat", "dog", "photo", "of"]:
        vocab[word + "</w>"] = len(vocab)
    for ch in "abcdefghijklmnopqrstuvwxyz":
        vocab.setdefault(ch, len(vocab))
        vocab.setdefault(ch + "</w>", len(vocab))
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[])
    config = CLIPConfig(
        text_config=dict(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, max_position_embeddings=24, bos_token_id=0, eos_token_id=1,
                         pad_token_id=1),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           image_size=32, patch_size=8),
        projection_dim=16,
    )
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny_clip")
    CLIPModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
