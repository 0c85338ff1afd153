"""``textok demo emoji`` with a shipped pair: a fake one (tiny random TexTok models, shipped with
studies/emoji32/ship_checkpoints.py) re-scored on the emoji splits and drawn (the scenes demo: tests/test_demo.py)."""

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


@pytest.mark.slow
def test_demo_emoji_rescores_the_shipped_pair(emoji_root, fake_shipped, tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "emoji", "--out", str(out), "--eval-limit", "4", "--data", str(emoji_root)]) == 0
    printed = capsys.readouterr().out
    assert "the shipped pair: emoji32-textok-n4 and emoji32-baseline-n4" in printed
    saved = json.loads((out / "results.json").read_text())
    assert saved["demo"] == "emoji" and set(saved["scores"]) == {"val_unseen", "val"}  # the order: the table's
    for split in saved["scores"].values():
        for name in ("baseline", "textok"):
            r = split[name]
            assert 0 < r["psnr"] < 60 and 0 <= r["ssim"] <= 1 and 0 <= r["lpips"] <= 2 and r["num"] == 4
            assert "rfid" not in r
    assert saved["meta"]["tokens"] == 4 and saved["meta"]["source"]["textok"]["run"] == "textok-n4-s0"
    for grid in ("reconstructions.png", "caption_swap.png"):
        assert (out / grid).stat().st_size > 1000
    assert all(row["swapped_caption"] != row["caption"] for row in saved["grid"])  # a swap, never the own caption
    md = (out / "results.md").read_text()
    # each split named for what it measures, new emoji first; no column of the originals here
    assert md.index("| PSNR (dB) ↑, val_unseen (new emoji), 4 images |") < md.index(
        "| PSNR (dB) ↑, val (recall: other renderings of training emoji), 4 images |")
    assert "| measure | baseline | TexTok |" in md and "not a measured effect" in md
    assert md in printed  # the one table printed is the one written


def test_demo_without_a_shipped_pair_says_where_it_looked(tmp_path, capsys):
    for kind in ("scenes", "emoji"):
        assert main(["demo", kind, "--out", str(tmp_path / "demo"), "--pretrained", str(tmp_path / "none")]) == 2
        err = capsys.readouterr().err
        assert "no shipped pair" in err and f"{kind}32-textok-n<N>" in err and not (tmp_path / "demo").exists()


@pytest.mark.slow
def test_demo_rfid_on_the_new_emoji_split_by_default(emoji_root, fake_shipped, tmp_path, monkeypatch, tiny_features):
    import textok.metrics
    from textok.demo import demo

    monkeypatch.setattr(textok.metrics, "InceptionFeatures", lambda: tiny_features)  # the demo builds it with no args
    report = demo("emoji", tmp_path / "demo", data=emoji_root, eval_limit=4, rows=1, rfid=True)
    val, unseen = report["scores"]["val"], report["scores"]["val_unseen"]
    assert all(r["rfid"] > 0 for r in unseen.values())
    assert all("rfid" not in r for r in val.values())
    md = (tmp_path / "demo" / "results.md").read_text()
    assert md.count("| rFID ↓ |") == 1  # no rFID row on val
    # both splits on request; an unknown split is refused before any work
    both = demo("emoji", tmp_path / "demo2", data=emoji_root, eval_limit=4, rows=1, rfid=True,
                rfid_splits=["val", "val_unseen"])
    assert all(r["rfid"] > 0 for rows in both["scores"].values() for r in rows.values())
    with pytest.raises(ValueError, match="unknown split"):
        demo("emoji", tmp_path / "demo3", rfid=True, rfid_splits=["test"])
    with pytest.raises(SystemExit):  # the CLI's choices
        main(["demo", "emoji", "--out", str(tmp_path / "demo4"), "--rfid", "--rfid-splits", "test"])


@pytest.mark.slow
def test_demo_reads_the_shipped_inception_features_only_of_the_same_images(emoji_root, fake_shipped, tmp_path,
                                                                            monkeypatch, tiny_features, capsys):
    """``emoji32-val_unseen-inception.npz`` beside the pair replaces the originals' Inception pass
    when it holds exactly these images (same rFID); features of other images are reported and not used."""
    import textok.metrics
    from textok.demo import demo
    from textok.metrics import dataset_stats, save_stats

    monkeypatch.setattr(textok.metrics, "InceptionFeatures", lambda: tiny_features)
    kw = dict(data=emoji_root, eval_limit=4, rows=1, rfid=True)
    computed = demo("emoji", tmp_path / "computed", **kw)["scores"]["val_unseen"]
    shipped = fake_shipped / "emoji32-val_unseen-inception.npz"
    for split in ("val", "val_unseen"):  # first the wrong images under the val_unseen name, then the right ones
        stats = dataset_stats(emoji_root, num=4, split=split, image_size=32, extractor=tiny_features, progress=False)
        save_stats(shipped, stats, moments=False, features_dtype="float16")
        capsys.readouterr()
        result = demo("emoji", tmp_path / f"with_{split}", **kw)["scores"]["val_unseen"]
        printed = capsys.readouterr().out
        if split == "val":
            assert "the originals' Inception features:" in printed and "other images" in printed
        else:
            assert "the originals' Inception features: shipped, same images and network" in printed
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
    kw = dict(data=emoji_root, eval_limit=8, rfid_limit=4, rows=1, rfid=True)
    computed = demo("emoji", tmp_path / "computed", **kw)
    assert {r["num"] for r in computed["scores"]["val_unseen"].values()} == {4}  # min(eval_limit, rfid_limit)
    assert {r["num"] for r in computed["scores"]["val"].values()} == {8}  # no rFID there: eval_limit
    stats = dataset_stats(emoji_root, split="val_unseen", image_size=32, extractor=tiny_features, progress=False)
    assert stats.num > 4
    save_stats(fake_shipped / "emoji32-val_unseen-inception.npz", stats, moments=False, features_dtype="float16")
    capsys.readouterr()
    shipped = demo("emoji", tmp_path / "shipped", **kw)["scores"]["val_unseen"]
    assert "Inception features: shipped, same images and network" in capsys.readouterr().out
    for name in ("baseline", "textok"):
        assert shipped[name]["rfid"] == pytest.approx(computed["scores"]["val_unseen"][name]["rfid"], rel=1e-2)
    with pytest.raises(ValueError, match="rfid-limit"):
        demo("emoji", tmp_path / "bad", rfid=True, rfid_limit=-1)
    capsys.readouterr()
    assert main(["demo", "emoji", "--out", str(tmp_path / "bad"), "--rfid", "--rfid-limit", "-1"]) == 2  # no work
    assert "--rfid-limit >= 0, got 300, 8, None and -1" in capsys.readouterr().err and not (tmp_path / "bad").exists()


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
