"""``textok train-tokenizer`` end to end on tiny budgets (``textok demo``: tests/test_demo.py)."""

import pytest
import yaml

from textok import TexTok
from textok.cli import main
from textok.config import to_dict


def _yaml(tmp_path, cfg):
    path = tmp_path / "tiny.yaml"
    data = to_dict(cfg)
    path.write_text(yaml.safe_dump(data))
    return path


def test_train_tokenizer_cli_baseline_and_resume(emoji_root, tmp_path, make_config, capsys):
    cfg = make_config(emoji_root, "schedule.max_steps=2", "checkpoint.every=1", "checkpoint.keep_last=1")
    config = _yaml(tmp_path, cfg)
    out = tmp_path / "run"
    assert main(["train-tokenizer", "--config", str(config), "--out", str(out), "--baseline", "model.num_tokens=4"]) == 0
    assert "trained 2 steps" in capsys.readouterr().out
    model = TexTok.from_pretrained(out / "model")
    assert model.config.text_in == "none" and model.config.num_tokens == 4
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["step_00000002"]  # keep_last=1
    # --resume of a finished run is a no-op that succeeds; a changed recipe is refused (exit 2, one line)
    assert main(["train-tokenizer", "--config", str(config), "--out", str(out), "--baseline", "model.num_tokens=4",
                 "--resume"]) == 0
    assert main(["train-tokenizer", "--config", str(config), "--out", str(out), "--baseline", "--resume"]) == 2
    err = capsys.readouterr().err
    assert "model.num_tokens: 4 != 8" in err
    # --init-from fine-tunes from a model folder in a new run
    assert main(["train-tokenizer", "--config", str(config), "--out", str(tmp_path / "ft"), "--baseline",
                 "model.num_tokens=4", "--init-from", str(out / "model")]) == 0
    assert main(["train-tokenizer", "--config", str(tmp_path / "nope.yaml")]) == 2
