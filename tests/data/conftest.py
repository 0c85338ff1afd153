"""Tiny data sets written by the tests themselves."""

import json

import numpy as np
import pytest
from PIL import Image


def write_image(path, size=(40, 40), mode="RGB", seed=0):
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    arr = rng.integers(0, 256, size=(size[1], size[0], channels), dtype=np.uint8)
    Image.fromarray(arr[..., 0] if channels == 1 else arr, mode=mode).save(path)
    return path


def write_jsonl(path, entries):
    path.write_text("".join(json.dumps(e) + "\n" for e in entries), encoding="utf-8")


@pytest.fixture
def folder_dataset(tmp_path):
    """6 images (train 4 / val 2) in the folder format."""
    root = tmp_path / "folder"
    entries = []
    for i in range(6):
        write_image(root / "img" / f"{i}.png", seed=i)
        entries.append({"file": f"img/{i}.png", "caption": f"picture number {i}", "label": i % 2,
                        "class": ["cat", "dog"][i % 2], "split": "val" if i >= 4 else "train"})
    write_jsonl(root / "captions.jsonl", entries)
    return root


@pytest.fixture
def class_tree(tmp_path):
    """train/{cat,dog}/ with 3 images each, test/{cat,dog}/ with 1, and a caption pool."""
    root = tmp_path / "tree"
    for split, n in (("train", 3), ("test", 1)):
        for c in ("cat", "dog"):
            for i in range(n):
                write_image(root / split / c / f"{i}.png", seed=i)
    (root / "class_captions.json").write_text(json.dumps({"cat": ["a cat", "a small cat"], "dog": ["a dog"]}))
    (root / "class_captions_heldout.json").write_text(json.dumps({"cat": ["an unseen cat"], "dog": ["an unseen dog"]}))
    return root


@pytest.fixture
def make_image():
    return write_image


@pytest.fixture
def make_jsonl():
    return write_jsonl
