"""Fixtures for the training tests: real emoji (data/emoji, fetched if missing), tiny configs."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
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


SLOW_CHILD = """
import sys, time, torch
sys.path.insert(0, {tests!r})
torch.set_num_threads(1)
from conftest import tiny_config
from textok.training import Trainer, TokenizerTask

class SlowAfterCheckpoint(TokenizerTask):
    # steps after the first checkpoint are slow, so the parent's SIGKILL lands mid-run
    def generator_loss(self, model, batch, step, rng):
        if step >= {slow_from}:
            time.sleep(0.5)
        return super().generator_loss(model, batch, step, rng)

cfg = tiny_config({root!r}, *{overrides!r})
Trainer(SlowAfterCheckpoint(cfg), cfg, {out!r}).train()
"""


def _wait_for_unlock(folder: Path, seconds: float = 60.0) -> None:
    """Until no process holds ``folder``'s run lock: the trainer is reaped, but its SIGKILLed
    DataLoader workers, which inherited the lock's file, may not have exited yet."""
    from textok.errors import FolderLockedError
    from textok.io import FolderLock

    deadline = time.time() + seconds
    while True:
        try:
            FolderLock(folder).release()
            return
        except FolderLockedError:
            if time.time() > deadline:
                raise
            time.sleep(0.1)


@pytest.fixture
def train_and_kill(kill_child_at):
    """``train_and_kill(root, overrides, out, step)`` -> the checkpoint folder of ``step``: the tiny
    recipe trained in a child process (steps from ``step`` on slowed down), SIGKILLed with its
    DataLoader workers as soon as that checkpoint is written; returns once the run folder is free."""

    def run(root, overrides, out: Path, step: int) -> Path:
        script = SLOW_CHILD.format(tests=str(Path(__file__).parent), root=str(root), overrides=list(overrides),
                                   out=str(out), slow_from=step)
        checkpoint = out / "checkpoints" / f"step_{step:08d}"
        kill_child_at(script, checkpoint / "trainer_state.json", group=True)
        _wait_for_unlock(out)  # the killed workers (forked: they share the run's lock) exit asynchronously
        return checkpoint

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
