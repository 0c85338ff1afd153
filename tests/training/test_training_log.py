"""Without a progress bar (``logging.progress=false``: a log file, the study's workers) the trainer logs one
line every ``logging.log_every`` steps, so a long run's log shows its step and rate before it ends."""

import logging

from textok.training import Trainer, TokenizerTask


def test_progress_lines_without_a_bar(emoji_root, tmp_path, make_config, caplog):
    cfg = make_config(emoji_root, "logging.log_every=2", "schedule.max_steps=5", "checkpoint.every=10")
    with caplog.at_level(logging.INFO, logger="textok.training.trainer"):
        Trainer(TokenizerTask(cfg), cfg, tmp_path / "run").train()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("step ")]
    assert [line.split()[1] for line in lines] == ["2/5", "4/5", "5/5"]  # every 2 steps, and the last
    assert all("loss" in line and "s/step" in line for line in lines)
