"""studies/scenes/run.py: the runs the issue asks for, and the driver end to end on a tiny model (~3 steps)."""

import json

import pytest

from tests.studies.scenes.conftest import TINY


@pytest.fixture(scope="module")
def sr(scenes_study):
    return scenes_study("run")


def test_runs_cover_the_issue(sr):
    runs = {r.name: r for r in sr.study_runs()}
    for n in (1, 2, 4, 8):
        assert runs[f"textok-n{n}-s0"].curve and runs[f"baseline-n{n}-s0"].curve
    for n in (1, 4):  # 3 seeds per arm at N = 1 and 4
        for arm in ("textok", "baseline"):
            assert {r.seed for r in runs.values() if r.arm == arm and r.num_tokens == n and r.group in ("main", "seeds")} \
                == {0, 1, 2}
    assert {r.caption_variant for r in runs.values() if r.group == "richness"} == {"shapes", "shapes_colours"}
    assert runs["textok-n1-s0-mpnet"].encoder == "mpnet" and "model.text_dim=768" in runs["textok-n1-s0-mpnet"].overrides
    base = runs["baseline-n4-s2"].config_overrides()
    assert {"model.text_in=none", "data.caption_dropout=0.0", "seed=2", "model.num_tokens=4"} <= set(base)
    assert runs["baseline-n1-s0"].encoder is None
    assert runs["textok-n1-s0"].budgets(5000) == (1250, 2500, 5000) and runs["textok-n1-s1"].budgets(5000) == (5000,)
    assert [r.name for r in sr.select(sr.study_runs(), ["textok-n1-*,baseline-n8-s0"])] == [
        "textok-n1-s0", "baseline-n8-s0", "textok-n1-s1", "textok-n1-s2", "textok-n1-s0-shapes",
        "textok-n1-s0-shapes-colours", "textok-n1-s0-mpnet"]
    with pytest.raises(SystemExit, match="matches no run"):
        sr.select(sr.study_runs(), ["textok-n3-*"])


def test_recipe(sr):
    from textok.training import load_config

    cfg = load_config(sr.CONFIG, sr.study_runs()[0].config_overrides())
    assert (cfg.model.image_size, cfg.model.patch_size, cfg.model.width, cfg.model.depth) == (32, 8, 96, 3)
    assert cfg.schedule.decay == "constant" and cfg.loss.perceptual_weight == 0 and cfg.model.max_text_tokens >= 34
    assert not cfg.data.augment and not cfg.data.flip


def test_driver_end_to_end(tmp_path, sr, tiny_scenes, capsys, monkeypatch):
    """Two runs trained to 4 steps (the main run scored at 1, 2 and 4), resumed and skipped when done."""
    from tests.conftest import TinyFeatures

    monkeypatch.setattr(sr, "FEATURES", TinyFeatures())
    monkeypatch.setattr(sr, "TRAIN_PROBE", 8)
    work, results = tmp_path / "work", tmp_path / "results"
    args = ["--steps", "4", "--work", str(work), "--results", str(results), "--data", str(tiny_scenes)]
    args += [f"--override={o}" for o in TINY]
    assert sr.main(["--list", "--runs", "textok-n1-s0", *args]) == 0
    out = capsys.readouterr().out
    assert "pending [1, 2, 4]" in out and "estimate (prior" in out
    assert sr.missing_data(str(tiny_scenes), sr.study_runs()[:2]) == []
    assert sr.missing_data(str(tiny_scenes), [r for r in sr.study_runs() if r.encoder == "mpnet"]) == [
        f"textok embed-text --data {tiny_scenes} --encoder mpnet --variants full"]
    for name in ("textok-n1-s0", "baseline-n1-s0", "textok-n1-s0-shapes"):
        assert sr.main(["--job", name, *args]) == 0
    rec = json.loads((results / "textok-n1-s0.json").read_text())
    assert sorted(rec["budgets"], key=int) == ["1", "2", "4"]
    four = rec["budgets"]["4"]
    for split in ("val", "val_compositional"):
        assert four[split]["num_images"] == 4 and four[split]["psnr"] > 0 and four[split]["rfid"] >= 0
        assert 0 <= four[split]["lpips"] <= 1
    assert four["train_probe"]["num_images"] == 8
    assert four["threads"] >= 1 and four["cpu"] and four["effective_config"]["model"]["width"] == 32
    assert four["train_seconds_total"] >= rec["budgets"]["2"]["train_seconds_total"] > 0
    assert "model.num_tokens=1" in rec["overrides"] and rec["caption_variant"] == "full"
    base = json.loads((results / "baseline-n1-s0.json").read_text())
    assert list(base["budgets"]) == ["1", "2", "4"] and base["encoder"] is None
    assert base["budgets"]["4"]["effective_config"]["model"]["text_in"] == "none"
    shapes = json.loads((results / "textok-n1-s0-shapes.json").read_text())
    assert list(shapes["budgets"]) == ["4"] and shapes["caption_variant"] == "shapes"
    # idempotent: a finished run is not trained or scored again
    before = (results / "textok-n1-s0.json").read_bytes()
    assert sr.main(["--job", "textok-n1-s0", *args]) == 0
    assert (results / "textok-n1-s0.json").read_bytes() == before
    # a longer budget resumes from the checkpoint (steps 4 -> 8: only 8 is new for a side run ...)
    assert sr.pending_budgets(results, sr.study_runs()[0], 8) == [8]
    capsys.readouterr()
    assert sr.main(["--list", "--runs", "textok-n1-s0", "baseline-n1-s0", *args]) == 0
    assert "estimate (measured" in capsys.readouterr().out
