"""Fault cases (docs/reliability.md): tiny data written by the tests, tiny configs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image


def write_image(path: Path, size=(40, 40), seed=0) -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def write_jsonl(path: Path, entries) -> None:
    path.write_text("".join(json.dumps(e) + "\n" for e in entries), encoding="utf-8")


@pytest.fixture
def folder(tmp_path) -> Path:
    """8 images (train 6 / val 2) in the folder format."""
    root = tmp_path / "folder"
    entries = []
    for i in range(8):
        write_image(root / "img" / f"{i}.png", seed=i)
        entries.append({"file": f"img/{i}.png", "caption": f"picture number {i}", "split": "val" if i >= 6 else "train"})
    write_jsonl(root / "captions.jsonl", entries)
    return root


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
