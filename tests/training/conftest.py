"""Fixtures for the training tests: real emoji (data/emoji, fetched if missing), tiny configs."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from textok.training import Trainer, TokenizerTask, build_config

REPO = Path(__file__).resolve().parents[2]
log = logging.getLogger(__name__)


def _photo_folder(root: Path) -> Path:
    """Fallback when the emoji cannot be fetched: scikit-image's bundled photos, folder format."""
    from PIL import Image
    from skimage import data as skdata

    photos = {"astronaut": "an astronaut in a white suit", "chelsea": "a tabby cat", "coffee": "a cup of coffee",
              "rocket": "a rocket on a launch pad", "camera": "a man with a camera", "horse": "a horse"}
    lines = []
    for i, (name, caption) in enumerate(photos.items()):
        arr = getattr(skdata, name)()
        img = Image.fromarray(arr).convert("RGB")
        img.save(root / f"{name}.png")
        lines.append({"file": f"{name}.png", "caption": caption, "split": "val" if i >= 4 else "train"})
    (root / "captions.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return root


@pytest.fixture(scope="session")
def emoji_root(tmp_path_factory) -> Path:
    """The real emoji data set (data/emoji; fetched through the data API if missing)."""
    root = REPO / "data" / "emoji"
    if (root / "captions.jsonl").is_file():
        return root
    try:
        from textok.data import fetch

        fetch("emoji", root)
        return root
    except Exception as e:  # offline: fall back to real photos bundled with scikit-image
        log.warning("could not fetch the emoji data set (%s); using scikit-image photos", e)
        return _photo_folder(tmp_path_factory.mktemp("photos"))


def tiny_config(root: Path, *overrides: str):
    """A 32 px, width-32, depth-1 TexTok recipe that trains in well under a second per step."""
    base = {
        "model": {"preset": "textok-mini-32", "width": 32, "depth": 1, "heads": 2, "num_tokens": 8,
                  "max_text_tokens": 32},
        "data": {"root": str(root), "augment": False, "max_images": 16},
        "loss": {"perceptual_weight": 0.0, "adversarial_weight": 0.0},
        "optim": {"batch_size": 4, "lr": 3e-3, "betas": [0.9, 0.99]},
        "schedule": {"max_steps": 4, "warmup_steps": 1},
        "ema": {"decay": 0.9},
        "checkpoint": {"every": 2, "keep_last": 5},
        "logging": {"tensorboard": False, "progress": False, "num_preview": 0},
        "mixed_precision": "no",
    }
    return build_config(base, list(overrides))


@pytest.fixture
def make_config():
    """``make_config(root, *overrides)`` -> the tiny recipe (see ``tiny_config``)."""
    return tiny_config


TWO_PROCESS_CHILD = """
import sys, torch
sys.path.insert(0, {tests!r})
torch.set_num_threads(1)
from conftest import tiny_config
from textok.training import Trainer, TokenizerTask
cfg = tiny_config({root!r}, *{overrides!r})
trainer = Trainer(TokenizerTask(cfg), cfg, {out!r})
assert trainer.world == 2, trainer.world
trainer.train()
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def train_two_processes(tmp_path):
    """``train_two_processes(root, overrides, out)``: the tiny recipe trained by 2 gloo processes
    (torchrun's environment variables, one thread each); fails with the log of a process that fails."""

    def run(root, overrides, out) -> None:
        script = tmp_path / "child.py"
        script.write_text(TWO_PROCESS_CHILD.format(tests=str(Path(__file__).parent), root=str(root),
                                                   overrides=list(overrides), out=str(out)))
        port = _free_port()
        procs = []
        for rank in range(2):
            env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "WORLD_SIZE": "2",
                   "RANK": str(rank), "LOCAL_RANK": str(rank), "LOCAL_WORLD_SIZE": "2", "OMP_NUM_THREADS": "1"}
            procs.append(subprocess.Popen([sys.executable, str(script)], env=env, cwd=REPO, stdout=subprocess.PIPE,
                                          stderr=subprocess.STDOUT, text=True))
        for p in procs:
            log, _ = p.communicate(timeout=300)
            assert p.returncode == 0, log[-3000:]

    return run


@pytest.fixture
def train_in_process():
    """``train_in_process(cfg, out, resume=False)`` -> the ``TrainResult`` of a ``TokenizerTask`` run
    in this process, on one thread (``_one_thread``: the reduction order of a one-thread child)."""

    def train(cfg, out, resume=False):
        return Trainer(TokenizerTask(cfg), cfg, out, resume=resume).train()

    return train


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: tiny models are slower with more, and the CI machine is shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
