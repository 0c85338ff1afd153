"""Fault cases (docs/reliability.md): tiny data written by the tests, tiny configs."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
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


def load_conftest(folder: str):
    """tests/<folder>/conftest.py, loaded by path (as ``_textok_<folder>_conftest``): its fixtures and helpers
    are reused, not copied."""
    path = Path(__file__).resolve().parents[1] / folder / "conftest.py"
    spec = importlib.util.spec_from_file_location(f"_textok_{folder}_conftest", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_training = load_conftest("training")  # its tiny recipe
tiny_config = _training.tiny_config
make_config = _training.make_config  # fixture: ``make_config(root, *overrides)``, the tiny recipe
_one_thread = _training._one_thread  # autouse fixture: one intra-op thread


@pytest.fixture(scope="session")
def train_root(tmp_path_factory) -> Path:
    """16 random 40 px images with captions (train 12 / val 4): enough for the tiny recipe."""
    root = tmp_path_factory.mktemp("train_data")
    entries = []
    for i in range(16):
        write_image(root / "img" / f"{i}.png", seed=i)
        entries.append({"file": f"img/{i}.png", "caption": f"a picture of noise number {i}",
                        "split": "val" if i >= 12 else "train"})
    write_jsonl(root / "captions.jsonl", entries)
    return root
