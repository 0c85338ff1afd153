"""``textok fid-stats``, ``eval-tokenizer`` and ``eval-generation`` through the command line."""

import dataclasses
import json

import numpy as np
import pytest

import textok.metrics.generation_eval as generation_eval
import textok.metrics.reference as reference
import textok.metrics.tokenizer_eval as tokenizer_eval
from textok import TexTok
from textok.cli import main
from textok.metrics import load_stats


@pytest.fixture
def stand_in_inception(monkeypatch, tiny_features):
    """The CLI builds ``InceptionFeatures(device=...)`` (each protocol's module); hand it the small stand-in instead."""
    for module in (reference, tokenizer_eval, generation_eval):
        monkeypatch.setattr(module, "InceptionFeatures", lambda device="cpu": tiny_features)


def test_cli_protocols(image_folder, tmp_path, tiny_config, stand_in_inception, capsys):
    stats = tmp_path / "ref.npz"
    assert main(["fid-stats", "--data", str(image_folder), "--split", "val", "--image-size", "32",
                 "--out", str(stats), "--no-progress"]) == 0
    assert "6 images" in capsys.readouterr().out
    assert load_stats(stats).features.shape == (6, 64)

    ckpt = TexTok(dataclasses.replace(tiny_config, text_in="none")).save_pretrained(tmp_path / "baseline")
    out = tmp_path / "eval"
    assert main(["eval-tokenizer", "--checkpoint", str(ckpt), "--name", "baseline", "--data", str(image_folder),
                 "--num", "3", "--out", str(out), "--no-lpips", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "| baseline | 32 | 8 |" in printed and "3 images" in printed
    assert json.loads((out / "eval_tokenizer.json").read_text())["results"][0]["lpips"] is None
    assert main(["eval-tokenizer", "--checkpoint", str(ckpt), "--data", str(image_folder), "--num", "3",
                 "--out", str(out), "--no-lpips", "--no-rfid", "--no-progress"]) == 0
    assert "rFID not computed" in capsys.readouterr().out
    assert json.loads((out / "eval_tokenizer.json").read_text())["results"][0]["rfid"] is None

    # the originals' statistics from a features-only file: the same rFID without their pass
    assert main(["eval-tokenizer", "--checkpoint", str(ckpt), "--data", str(image_folder), "--num", "3",
                 "--out", str(out), "--no-lpips", "--no-progress"]) == 0
    capsys.readouterr()
    rfid = json.loads((out / "eval_tokenizer.json").read_text())["results"][0]["rfid"]
    small = tmp_path / "small.npz"
    assert main(["fid-stats", "--data", str(image_folder), "--split", "val", "--image-size", "32", "--num", "3",
                 "--features-only", "--dtype", "float16", "--out", str(small), "--no-progress"]) == 0
    assert "float16 features of 3 images" in capsys.readouterr().out
    assert main(["eval-tokenizer", "--checkpoint", str(ckpt), "--data", str(image_folder), "--num", "3",
                 "--out", str(out), "--no-lpips", "--no-progress", "--reference", str(small)]) == 0
    capsys.readouterr()
    assert json.loads((out / "eval_tokenizer.json").read_text())["results"][0]["rfid"] == pytest.approx(rfid, rel=1e-2)
    assert main(["eval-tokenizer", "--checkpoint", str(ckpt), "--data", str(image_folder), "--num", "2",
                 "--out", str(out), "--no-lpips", "--no-progress", "--reference", str(small)]) == 2
    assert "hold 3 images, this evaluation 2" in capsys.readouterr().err
    # the whole split's features (the first fid-stats file) serve --num 3: the rows of those 3 images
    assert main(["eval-tokenizer", "--checkpoint", str(ckpt), "--data", str(image_folder), "--num", "3",
                 "--out", str(out), "--no-lpips", "--no-progress", "--reference", str(stats)]) == 0
    capsys.readouterr()
    assert json.loads((out / "eval_tokenizer.json").read_text())["results"][0]["rfid"] == pytest.approx(rfid, rel=1e-5)
    assert main(["eval-tokenizer", "--checkpoint", str(ckpt), "--data", str(image_folder), "--num", "3", "--out", str(out),
                 "--no-lpips", "--no-rfid", "--no-progress", "--decode-captions", str(tmp_path / "none.json")]) == 2
    assert "none.json is neither a rule" in capsys.readouterr().err
    assert main(["eval-tokenizer", "--checkpoint", str(ckpt), "--data", str(image_folder), "--num", "3", "--out", str(out),
                 "--no-lpips", "--no-rfid", "--no-progress", "--decode-captions", "same-class"]) == 0
    printed = capsys.readouterr().out
    assert "(`same-class`): " in printed and "baseline 0 of 3 images got another caption" in printed, printed  # no text to swap

    samples = np.random.default_rng(0).integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    np.savez(tmp_path / "samples.npz", arr_0=samples)
    assert main(["eval-generation", "--samples", str(tmp_path / "samples.npz"), "--ref", str(stats), "--json",
                 "--no-progress"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["num"] == 5 and report["gfid"] > 0 and report["precision"] is not None


def test_cli_user_errors_exit_2(image_folder, tmp_path, stand_in_inception, capsys):
    assert main(["eval-generation", "--samples", str(tmp_path / "none.npz"), "--ref", str(tmp_path / "r.npz")]) == 2
    assert "none.npz" in capsys.readouterr().err
    assert main(["fid-stats", "--data", str(image_folder), "--out", str(tmp_path / "x.npz"), "--num", "0"]) == 2
    assert "--num" in capsys.readouterr().err
    assert main(["fid-stats", "--data", str(image_folder), "--out", str(tmp_path / "x.txt"), "--split", "val",
                 "--image-size", "32", "--no-progress"]) == 2
    assert ".npz" in capsys.readouterr().err
    assert main(["fid-stats", "--data", str(image_folder), "--out", str(tmp_path / "x.npz"), "--features-only",
                 "--no-features"]) == 2
    assert "exclude each other" in capsys.readouterr().err


def test_cli_fid_stats_with_the_real_inception_network(image_folder, tmp_path, capsys):
    """fid-stats with the pinned TF-Inception TorchScript (FID itself is checked in test_metrics_fid.py)."""
    stats = tmp_path / "ref.npz"
    assert main(["fid-stats", "--data", str(image_folder), "--split", "val", "--image-size", "32", "--num", "3",
                 "--out", str(stats), "--no-progress"]) == 0
    assert "3 images" in capsys.readouterr().out
    ref = load_stats(stats)
    assert ref.mu.shape == (2048,) and ref.sigma.shape == (2048, 2048) and ref.num == 3
    assert ref.features.shape == (3, 2048) and (ref.features >= 0).all()
    np.testing.assert_allclose(ref.mu, ref.features.astype(np.float64).mean(0), rtol=1e-6)
    assert ref.info["image_size"] == 32 and "TF1 bilinear" in ref.info["inception"]
    from textok.assets import ASSETS

    assert ref.info["inception_sha256"] == ASSETS["inception-fid"].sha256  # the pinned file, hashed
    assert len(ref.info["pixels_sha256"]) == 64
