"""``textok train-tokenizer`` and ``textok demo`` end to end on tiny budgets."""

import json

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


@pytest.mark.slow
def test_demo_end_to_end_tiny_budget(emoji_root, tmp_path, capsys):
    """The shipped pair (package data) re-scored on a few images, and 2 steps of the recipe it names."""
    from textok.demo import demo
    from textok.pretrained import find_pair

    if find_pair() is None:
        pytest.skip("no shipped pair in this build")
    overrides = [f"data.root={emoji_root}", "schedule.warmup_steps=1", "optim.batch_size=4", "model.width=32",
                 "model.depth=1", "model.heads=2", "loss.perceptual_weight=0", "checkpoint.every=10",
                 "logging.num_preview=2", "logging.tensorboard=false"]
    report = demo(tmp_path / "demo", overrides=overrides, eval_limit=4, grid_rows=3, train_steps=2)
    out = capsys.readouterr().out
    assert "| val_unseen (new emoji), 4 images | TexTok |" in out
    saved = json.loads((tmp_path / "demo" / "results.json").read_text())
    assert [s["split"] for s in saved["meta"]["splits"]] == ["val_unseen", "val"]
    for split in saved["results"].values():
        for name in ("baseline", "textok"):
            assert 0 < split[name]["psnr"] < 60 and 0 <= split[name]["lpips"] <= 2
    assert report["short_run"]["steps"] == 2
    assert (tmp_path / "demo" / "reconstructions.png").stat().st_size > 1000