"""``textok demo`` with a shipped pair: a fake one (tiny random TexTok models, shipped with
studies/emoji32/ship_checkpoints.py) re-scored, drawn and followed by a 2-step run."""

import json

import pytest
import torch

from textok.cli import main
from textok.models import TexTok, TexTokConfig


@pytest.fixture
def fake_shipped(tmp_path, monkeypatch, ship_module):
    """emoji32-textok-n4 and emoji32-baseline-n4 from tiny random models, in a tmp pretrained root
    that the demo uses (``textok.pretrained.PRETRAINED_DIR`` monkeypatched)."""
    ship = ship_module
    root = tmp_path / "pretrained"
    # the study's score files of the TexTok run: 50 -> 100 steps moved val PSNR by 1 dB (not converged)
    results = tmp_path / "results"
    (results / "textok-n4-s0").mkdir(parents=True)
    for steps, psnr in ((50, 10.0), (100, 11.0)):
        (results / "textok-n4-s0" / f"step_{steps:07d}.json").write_text(json.dumps({"steps": steps, "records": [
            {"split": "val", "num_images": 4, "psnr": psnr, "ssim": 0.1, "lpips": 0.9, "rfid": 300.0}]}))
    for arm, text_in in (("textok", "both"), ("baseline", "none")):
        torch.manual_seed(0)
        model = TexTok(TexTokConfig(image_size=32, patch_size=4, num_tokens=4, token_dim=8, width=32, depth=1,
                                    heads=2, max_text_tokens=32, text_in=text_in))
        stage = tmp_path / "study" / "runs" / f"{arm}-n4-s0" / "stages" / "step_0000100"
        model.save_pretrained(stage)
        ship.ship_checkpoint(stage, root, results)
    import textok.pretrained

    monkeypatch.setattr(textok.pretrained, "PRETRAINED_DIR", root)
    return root


TINY = ["model.width=32", "model.depth=1", "model.heads=2", "optim.batch_size=4", "loss.perceptual_weight=0",
        "schedule.warmup_steps=1", "checkpoint.every=10", "logging.num_preview=2", "logging.tensorboard=false",
        "data.max_images=16"]


@pytest.mark.slow
def test_demo_rescores_the_shipped_pair_and_trains_a_short_run(emoji_root, fake_shipped, tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--eval-limit", "4", "--train-steps", "2", f"data.root={emoji_root}",
                 *TINY]) == 0
    printed = capsys.readouterr().out
    assert "the shipped pair: emoji32-textok-n4 and emoji32-baseline-n4" in printed
    saved = json.loads((out / "results.json").read_text())
    # the new-emoji split first, each split named for what it measures
    assert saved["meta"]["splits"] == [{"split": "val_unseen", "label": "val_unseen (new emoji)"},
                                       {"split": "val", "label": "val (recall: other renderings of training emoji)"}]
    for split in saved["results"].values():
        for name in ("baseline", "textok"):
            r = split[name]
            assert 0 < r["psnr"] < 60 and 0 <= r["ssim"] <= 1 and 0 <= r["lpips"] <= 2 and r["num"] == 4
            assert "rfid" not in r
    short = saved["short_run"]
    assert short["steps"] == 2 and short["split"] == "val_unseen" and len(short["loss_curve"]) == 2
    assert 0 < short["scores"]["psnr"] < 60 and short["loss_first"] is not None
    assert saved["meta"]["tokens"] == 4 and saved["meta"]["source"]["textok"]["run"] == "textok-n4-s0"
    for grid in ("reconstructions.png", "caption_swap.png"):
        assert (out / grid).stat().st_size > 1000
    assert all(set(row["psnr"]) == {"baseline", "TexTok", "TexTok, swapped"} for row in saved["grid"])
    assert all(row["swapped_caption"] != row["caption"] for row in saved["grid"])  # a swap, never the own caption
    md = (out / "results.md").read_text()
    assert md.index("| val_unseen (new emoji), 4 images | TexTok |") < md.index(
        "| val (recall: other renderings of training emoji), 4 images | TexTok |")
    assert "Short run" in md and "not a measured effect" in md
    # the short run is TexTok at the shipped N, of the recipe the shipped TexTok's SOURCE.json names (the fake
    # study's score files name no config: the first recipe, 4x4 patches)
    assert saved["meta"]["config"] == "configs/emoji32_textok.yaml"
    short_cfg = TexTok.from_pretrained(out / "short_run" / "model").config
    assert short_cfg.num_tokens == 4 and short_cfg.patch_size == 4


def test_demo_without_a_shipped_pair_says_where_it_looked(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "demo"), "--pretrained", str(tmp_path / "none")]) == 2
    assert "no shipped pair" in capsys.readouterr().err and not (tmp_path / "demo").exists()


@pytest.mark.slow
def test_demo_shipped_without_the_short_run(emoji_root, fake_shipped, tmp_path, capsys):
    from textok.demo import demo

    report = demo(tmp_path / "demo", overrides=[f"data.root={emoji_root}"], eval_limit=2, grid_rows=1, train_steps=0)
    assert report["short_run"] is None and set(report["results"]) == {"val", "val_unseen"}
    assert not (tmp_path / "demo" / "short_run").exists()
    assert "Short run" not in (tmp_path / "demo" / "results.md").read_text()


@pytest.mark.slow
def test_demo_rfid_on_the_new_emoji_split_by_default(emoji_root, fake_shipped, tmp_path, monkeypatch, tiny_features):
    import textok.metrics
    from textok.demo import demo

    monkeypatch.setattr(textok.metrics, "InceptionFeatures", lambda: tiny_features)  # the demo builds it with no args
    report = demo(tmp_path / "demo", overrides=[f"data.root={emoji_root}"], eval_limit=4, grid_rows=1,
                  train_steps=0, rfid=True)
    val, unseen = report["results"]["val"], report["results"]["val_unseen"]
    assert all(r["rfid"] > 0 for r in unseen.values())
    assert all("rfid" not in r for r in val.values())
    assert report["meta"]["rfid"] == ["val_unseen"]
    md = (tmp_path / "demo" / "results.md").read_text()
    assert md.count(" – |") == 2  # no rFID cell on val
    # both splits on request; an unknown split is refused before any work
    both = demo(tmp_path / "demo2", overrides=[f"data.root={emoji_root}"], eval_limit=4, grid_rows=1,
                train_steps=0, rfid=True, rfid_splits=["val", "val_unseen"])
    assert all(r["rfid"] > 0 for rows in both["results"].values() for r in rows.values())
    with pytest.raises(ValueError, match="unknown split"):
        demo(tmp_path / "demo3", rfid=True, rfid_splits=["test"])
    with pytest.raises(SystemExit):  # the CLI's choices
        main(["demo", "--out", str(tmp_path / "demo4"), "--rfid", "--rfid-splits", "test"])


@pytest.mark.slow
def test_demo_reads_the_shipped_inception_features_only_of_the_same_images(emoji_root, fake_shipped, tmp_path,
                                                                            monkeypatch, tiny_features, capsys):
    """``emoji32-val_unseen-inception.npz`` beside the pair replaces the originals' Inception pass
    when it holds exactly these images (same rFID); features of other images are reported and not used."""
    import textok.metrics
    from textok.demo import demo
    from textok.metrics import dataset_stats, save_stats

    monkeypatch.setattr(textok.metrics, "InceptionFeatures", lambda: tiny_features)
    kw = dict(overrides=[f"data.root={emoji_root}"], eval_limit=4, grid_rows=1, train_steps=0, rfid=True)
    computed = demo(tmp_path / "computed", **kw)["results"]["val_unseen"]
    shipped = fake_shipped / "emoji32-val_unseen-inception.npz"
    for split in ("val", "val_unseen"):  # first the wrong images under the val_unseen name, then the right ones
        stats = dataset_stats(emoji_root, num=4, split=split, image_size=32, extractor=tiny_features, progress=False)
        save_stats(shipped, stats, moments=False, features_dtype="float16")
        capsys.readouterr()
        result = demo(tmp_path / f"with_{split}", **kw)["results"]["val_unseen"]
        printed = capsys.readouterr().out
        if split == "val":
            assert "not using the shipped Inception features" in printed and "other images" in printed
        else:
            assert f"Inception features: {shipped} (same images" in printed and "not using" not in printed
        for name in ("baseline", "textok"):  # float16 features: the same rFID to ~1e-3
            assert result[name]["rfid"] == pytest.approx(computed[name]["rfid"], rel=1e-2)
            assert result[name]["psnr"] == computed[name]["psnr"]


@pytest.mark.slow
def test_demo_rfid_on_a_subset_takes_the_same_rows_of_the_whole_split_features(emoji_root, fake_shipped, tmp_path,
                                                                               monkeypatch, tiny_features, capsys):
    """``rfid_limit`` scores an rFID split on that many evenly spaced images; features shipped for the
    whole split are checked against the whole split and give the same rFID as computing those originals."""
    import textok.metrics
    from textok.demo import demo
    from textok.metrics import dataset_stats, save_stats

    monkeypatch.setattr(textok.metrics, "InceptionFeatures", lambda: tiny_features)
    kw = dict(overrides=[f"data.root={emoji_root}"], eval_limit=8, rfid_limit=4, grid_rows=1, train_steps=0, rfid=True)
    computed = demo(tmp_path / "computed", **kw)
    assert computed["meta"]["rfid_limit"] == 4
    assert {r["num"] for r in computed["results"]["val_unseen"].values()} == {4}  # min(eval_limit, rfid_limit)
    assert {r["num"] for r in computed["results"]["val"].values()} == {8}  # no rFID there: eval_limit
    stats = dataset_stats(emoji_root, split="val_unseen", image_size=32, extractor=tiny_features, progress=False)
    assert stats.num > 4
    save_stats(fake_shipped / "emoji32-val_unseen-inception.npz", stats, moments=False, features_dtype="float16")
    capsys.readouterr()
    shipped = demo(tmp_path / "shipped", **kw)["results"]["val_unseen"]
    assert "(same images and network, 4 of them)" in capsys.readouterr().out
    for name in ("baseline", "textok"):
        assert shipped[name]["rfid"] == pytest.approx(computed["results"]["val_unseen"][name]["rfid"], rel=1e-2)
    with pytest.raises(ValueError, match="rfid-limit"):
        demo(tmp_path / "bad", rfid=True, rfid_limit=-1)
    capsys.readouterr()
    assert main(["demo", "--out", str(tmp_path / "bad"), "--rfid", "--rfid-limit", "-1"]) == 2  # before any work
    assert "--rfid-limit >= 0, got None and -1" in capsys.readouterr().err and not (tmp_path / "bad").exists()


@pytest.mark.parametrize("split", ["val_unseen", "val"])
def test_the_shipped_inception_features_are_of_the_real_split(emoji_root, split):
    """The originals' features shipped beside the pair hold exactly the split's images at 32 px, from the
    pinned Inception file: the demo then skips that Inception pass (``shipped_reference``)."""
    import numpy as np

    from textok.assets import ASSETS
    from textok.metrics import image_fingerprint, load_stats
    from textok.pretrained import PRETRAINED_DIR

    path = PRETRAINED_DIR / f"emoji32-{split}-inception.npz"
    if not path.is_file():
        pytest.skip(f"no shipped {split} features in this build")
    with np.load(path) as raw:
        assert set(raw.files) == {"features", "info"} and raw["features"].dtype == np.float16
    stats = load_stats(path)
    assert stats.info["split"] == split and stats.info["image_size"] == 32
    assert stats.info["inception_sha256"] == ASSETS["inception-fid"].sha256
    assert path.stat().st_size < 3 * 1024 * 1024
    if not (emoji_root / "manifest.json").is_file():
        pytest.skip("not the emoji data set")
    assert stats.info["pixels_sha256"] == image_fingerprint(emoji_root, split, 32)
