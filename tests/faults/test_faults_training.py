"""Training: one process owns a run folder; an interrupt saves; resume refuses what it cannot trust."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

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


SLOW_CHILD = """
import sys, time
from textok.training.task import TokenizerTask
from textok.cli import main

plain = TokenizerTask.generator_loss
def slow(self, model, batch, step, rng):  # steps after the first checkpoint are slow: the signal lands mid-run
    if step >= 2:
        time.sleep(0.3)
    return plain(self, model, batch, step, rng)
TokenizerTask.generator_loss = slow
sys.exit(main(sys.argv[1:]))
"""


def _slow_child_past_first_checkpoint(train_root, tmp_path, make_config) -> tuple[subprocess.Popen, Path]:
    """A 40-step ``train-tokenizer`` run in SLOW_CHILD (one thread), returned with its run folder once its first
    checkpoint (step 2) is written: a signal sent now lands mid-run."""
    cfg = make_config(train_root, "schedule.max_steps=40", "checkpoint.every=2", "schedule.decay=constant")
    out = tmp_path / "run"
    script = tmp_path / "child.py"
    script.write_text(SLOW_CHILD)
    child = subprocess.Popen([sys.executable, str(script), "train-tokenizer", "--config", str(_yaml(tmp_path, cfg)),
                              "--out", str(out), "--threads", "1"], env={**os.environ, "OMP_NUM_THREADS": "1"},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (out / "checkpoints" / "step_00000002" / "trainer_state.json").exists():
        if child.poll() is not None or time.time() > deadline:
            child.kill()
            pytest.fail(f"no first checkpoint: {child.communicate()[1][-2000:]}")
        time.sleep(0.05)
    return child, out


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_saves_checkpoint_and_model(train_root, tmp_path, make_config, signum):
    child, out = _slow_child_past_first_checkpoint(train_root, tmp_path, make_config)
    child.send_signal(signum)
    _, err = child.communicate(timeout=120)
    assert child.returncode == 128 + signum, err[-2000:]
    summary = json.loads((out / "train_summary.json").read_text())
    step = summary["step"]
    assert 2 <= step < 40 and summary["interrupted"] == signal.Signals(signum).name
    assert (out / "checkpoints" / f"step_{step:08d}" / "trainer_state.json").is_file()
    assert (out / "model" / "model.safetensors").is_file()
    assert f"at step {step}" in err and "--resume" in err
    # the run goes on from there
    more = make_config(train_root, f"schedule.max_steps={step + 1}", "checkpoint.every=2", "schedule.decay=constant")
    assert Trainer(TokenizerTask(more), more, out, resume=True).train().step == step + 1


def test_on_bad_sample_error_reaches_the_data_layer(tmp_path, make_config):
    from textok.data import BadSampleError

    from .conftest import write_image, write_jsonl

    root = tmp_path / "data"
    for i in range(4):
        write_image(root / f"{i}.png", seed=i)
    write_jsonl(root / "captions.jsonl", [{"file": f"{i}.png", "caption": "x"} for i in range(4)]
                + [{"file": "missing.png", "caption": "x"}])
    with pytest.raises(ValueError, match="on_bad_sample"):
        make_config(root, "data.on_bad_sample=raise")
    cfg = make_config(root, "data.on_bad_sample=error", "data.max_images=null")
    with pytest.raises(BadSampleError, match="missing.png"):
        TokenizerTask(cfg).train_dataset()


def _two_checkpoints(train_root, tmp_path, make_config):
    cfg = make_config(train_root, "schedule.max_steps=4", "checkpoint.every=2", "schedule.decay=constant")
    out = tmp_path / "run"
    Trainer(TokenizerTask(cfg), cfg, out).train()
    return cfg, out, out / "checkpoints" / "step_00000002", out / "checkpoints" / "step_00000004"


def test_resume_without_checkpoint_is_an_error(train_root, tmp_path, make_config, capsys):
    cfg = make_config(train_root, "schedule.max_steps=2")
    with pytest.raises(ValueError, match="--resume: no checkpoint"):
        Trainer(TokenizerTask(cfg), cfg, tmp_path / "typo", resume=True)
    assert main(["train-tokenizer", "--config", str(_yaml(tmp_path, cfg)), "--out", str(tmp_path / "typo2"),
                 "--resume"]) == 2
    assert "no checkpoint" in capsys.readouterr().err


def test_corrupt_newest_checkpoint_falls_back_to_the_previous(train_root, tmp_path, make_config, caplog):
    import torch

    from textok.io import load_state_dict, save_state_dict
    from textok.training.checkpoint import CorruptCheckpointError

    cfg, out, older, newest = _two_checkpoints(train_root, tmp_path, make_config)
    weights = load_state_dict(newest / "model.safetensors")
    weights[next(iter(weights))] = torch.full_like(next(iter(weights.values())), float("nan"))
    save_state_dict(weights, newest / "model.safetensors")
    with caplog.at_level("WARNING"):
        trainer = Trainer(TokenizerTask(cfg), cfg, out, resume=True)
    assert trainer.step == 2 and trainer.resumed_from == older
    assert "step_00000004/model.safetensors: non-finite values" in caplog.text
    trainer.release()
    # a truncated file is just as corrupt; with no intact checkpoint left, resume is refused
    data = (older / "ema.safetensors").read_bytes()
    (older / "ema.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptCheckpointError, match="no intact checkpoint.*step_00000002"):
        Trainer(TokenizerTask(cfg), cfg, out, resume=True)


def test_nonfinite_numbers_in_the_config_are_refused(train_root, make_config):
    for bad in ("optim.lr=inf", "optim.lr=.nan", "ema.decay=-.inf"):
        with pytest.raises(ValueError, match="finite"):
            make_config(train_root, bad)


def test_train_summary_is_strict_json_after_nan_steps(train_root, tmp_path, make_config):
    from textok.training.task import StepResult

    class AllNaN(TokenizerTask):
        def generator_loss(self, model, batch, step, rng):
            res = super().generator_loss(model, batch, step, rng)
            return StepResult(res.loss * float("nan"), res.logs, res.aux)

    cfg = make_config(train_root, "schedule.max_steps=2", "max_nonfinite_in_a_row=10", "model.text_in=none")
    Trainer(AllNaN(cfg), cfg, tmp_path).train()

    def refuse(name):
        raise AssertionError(f"{name} in train_summary.json")

    summary = json.loads((tmp_path / "train_summary.json").read_text(), parse_constant=refuse)
    assert summary["nonfinite_total"] == 2 and summary["last_logs"]["loss"] is None


# ---- round two (issue 38) -------------------------------------------------------------------------------------
def test_a_signal_delivered_twice_at_once_is_one_interrupt(train_root, tmp_path, make_config):
    """`timeout -s INT` signals its child, then the child's whole process group: two SIGINTs within
    milliseconds are one interrupt, and the run still saves."""
    child, out = _slow_child_past_first_checkpoint(train_root, tmp_path, make_config)
    child.send_signal(signal.SIGINT)
    time.sleep(0.05)
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=120)
    assert child.returncode == 130, err[-2000:]
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["interrupted"] == "SIGINT" and (out / "checkpoints" / f"step_{summary['step']:08d}").is_dir()


def test_stop_requests_tell_a_repeat_from_a_second_ctrl_c(monkeypatch):
    from textok.training import signals

    now = [100.0]
    monkeypatch.setattr(signals.time, "monotonic", lambda: now[0])
    stop = signals.StopRequests()
    stop._handle(signal.SIGINT, None)
    now[0] += 0.5
    stop._handle(signal.SIGINT, None)  # the same interrupt again: no abort
    assert stop.signum == signal.SIGINT
    now[0] += stop.REPEAT_WINDOW
    with pytest.raises(KeyboardInterrupt):  # the user pressing Ctrl-C again, later: abort at once
        stop._handle(signal.SIGINT, None)


def test_skipped_samples_are_counted_in_the_summary(tmp_path, make_config):
    from .conftest import write_image, write_jsonl

    root = tmp_path / "data"
    entries = []
    for i in range(8):
        write_image(root / f"{i}.png", seed=i)
        entries.append({"file": f"{i}.png", "caption": f"picture {i}"})
    (root / "3.png").write_bytes(b"not a png at all")
    (root / "6.png").write_bytes((root / "5.png").read_bytes()[:100])  # truncated
    write_jsonl(root / "captions.jsonl", entries)
    # two steps of 4 are one epoch: every image is drawn once
    cfg = make_config(root, "schedule.max_steps=2", "model.text_in=none", "checkpoint.every=1")
    Trainer(TokenizerTask(cfg), cfg, tmp_path / "run").train()
    summary = json.loads((tmp_path / "run" / "train_summary.json").read_text())
    assert summary["skipped_samples"] == 2 and summary["step"] == 2
    state = json.loads((tmp_path / "run" / "checkpoints" / "step_00000002" / "trainer_state.json").read_text())
    assert state["skipped_samples"] == 2  # carried across a resume


def test_training_on_a_truncated_shard_skips_counts_and_saves(tmp_path, make_config):
    from .test_faults_data import _truncated_shards

    dst = _truncated_shards(tmp_path)  # 2 shards of 4; the second cut to a third
    cfg = make_config(dst, "schedule.max_steps=4", "model.text_in=none", "checkpoint.every=2",
                      "data.shuffle_buffer=1", "data.max_images=null")
    result = Trainer(TokenizerTask(cfg), cfg, tmp_path / "run").train()
    summary = json.loads((tmp_path / "run" / "train_summary.json").read_text())
    assert result.step == 4 and summary["step"] == 4
    assert summary["skipped_samples"] >= 6  # 3+ lost samples of the cut shard in each of the two epochs
    assert (tmp_path / "run" / "checkpoints" / "step_00000004").is_dir()


# ---- round three (issue 46): numbers checked at the config's edge, by name ---------------------------------------
@pytest.mark.parametrize("override, needle", [
    ("schedule.min_lr_ratio=-1", "schedule.min_lr_ratio must lie in [0, 1], got -1"),  # trained with lr < 0, rc 0
    ("schedule.min_lr_ratio=1.5", "schedule.min_lr_ratio must lie in [0, 1]"),
    ("logging.log_every=0", "logging.log_every must be >= 1, got 0"),  # ZeroDivisionError in trainer.py
    ("optim.lr=1e308", "optim.lr must lie in (0, 10]"),  # an overflow inside torch's Adam
    ("optim.critic_lr=-1e-4", "optim.critic_lr must lie in (0, 10]"),
    ("optim.betas=[0.9,1.5]", "optim.betas must lie in [0, 1)"),
    ("optim.eps=0", "optim.eps must be positive"),
    ("logging.preview_every=-5", "logging.preview_every must be >= 0"),
    ("seed=-1", "seed must be an integer in [0, 4294967295], got -1"),
])
def test_out_of_range_config_numbers_are_one_line_before_any_work(train_root, tmp_path, make_config, capsys,
                                                                   override, needle):
    from .test_faults_cli import _one_line_error

    path = _yaml(tmp_path, make_config(train_root))
    assert main(["train-tokenizer", "--config", str(path), "--out", str(tmp_path / "run"), override]) == 2
    _one_line_error(capsys, needle)
    assert not (tmp_path / "run").exists()


def test_mixed_precision_no_works_from_yaml_and_overrides(train_root, tmp_path, make_config):
    """YAML reads an unquoted `no` as false: the documented value was refused with `got False`."""
    from textok.training import load_config

    path = tmp_path / "c.yaml"
    path.write_text(_yaml(tmp_path, make_config(train_root)).read_text().replace("mixed_precision: 'no'",
                                                                                 "mixed_precision: no"))
    assert "mixed_precision: no\n" in path.read_text()
    assert load_config(path).mixed_precision == "no"
    assert load_config(path, ["mixed_precision=bf16", "mixed_precision=no"]).mixed_precision == "no"
    assert load_config(path, ["mixed_precision=off"]).mixed_precision == "no"  # YAML 1.1's other spelling
    with pytest.raises(ValueError, match=r"mixed_precision must be one of \['auto', 'no', 'bf16'\], got True"):
        load_config(path, ["mixed_precision=yes"])  # no choice is spelled yes: still refused by name
