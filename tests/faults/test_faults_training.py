"""Training: one process owns a run folder; an interrupt saves; resume refuses what it cannot trust."""

from __future__ import annotations

import os

import pytest
import yaml

from textok.cli import main
from textok.config import to_dict
from textok.errors import FolderLockedError
from textok.io import FolderLock
from textok.training import Trainer, TokenizerTask


def _yaml(tmp_path, cfg):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(to_dict(cfg)))
    return path


def test_second_trainer_on_the_same_out_is_refused(train_root, tmp_path, make_config, capsys):
    cfg = make_config(train_root, "schedule.max_steps=2", "checkpoint.every=1")
    out = tmp_path / "run"
    first = Trainer(TokenizerTask(cfg), cfg, out)
    with pytest.raises(FolderLockedError, match=f"PID {os.getpid()}"):
        Trainer(TokenizerTask(cfg), cfg, out)
    # the CLI: one line, exit 2, nothing of the holder's touched
    assert main(["train-tokenizer", "--config", str(_yaml(tmp_path, cfg)), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"PID {os.getpid()}" in err and str(out) in err
    assert not (out / "config.yaml").exists()
    first.train()  # the holder finishes, and its lock goes with it
    assert (out / "model").is_dir()
    assert Trainer(TokenizerTask(cfg), cfg, out, resume=True).step == 2


def test_folder_lock_is_released_by_the_os(tmp_path):
    lock = FolderLock(tmp_path)
    with pytest.raises(FolderLockedError):
        FolderLock(tmp_path)
    lock.release()
    FolderLock(tmp_path).release()
