"""``textok eval-adherence`` through the command line: the ceiling and the floor on fresh renders, the JSON
report, and bad input as one line."""

import json

import numpy as np
import pytest

from textok.cli import main
from textok.data.fetch import fetch_scenes
from textok.metrics import scenes as adherence


@pytest.fixture(scope="module")
def scene_set(tmp_path_factory):
    return fetch_scenes(tmp_path_factory.mktemp("scenes") / "s", count=10, eval_count=60, seed=12)


def _one_line_error(capsys, *parts):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("textok eval-adherence: error: "), err
    for part in parts:
        assert part in err[0], err[0]


def test_cli_ceiling_and_floor(scene_set, tmp_path, capsys):
    out = tmp_path / "adherence.json"
    assert main(["eval-adherence", str(scene_set / "images" / "val"), "--data", str(scene_set),
                 "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| exact | 100.0% |" in printed and "| shape | 100.0% | 100.0% |" in printed and "60 images" in printed
    report = json.loads(out.read_text())
    assert report["summary"]["images"]["exact"] == 1.0 and len(report["images"]) == 60
    assert report["settings"]["split"] == "val" and report["settings"]["shift"] == 0

    assert main(["eval-adherence", str(scene_set / "images" / "val"), "--data", str(scene_set), "--shift", "1"]) == 0
    printed = capsys.readouterr().out
    assert "caption i + 1" in printed and "chance: images" in printed
    exact = next(line for line in printed.splitlines() if line.startswith("| exact |"))
    assert exact.split("|")[2].strip() == exact.split("|")[4].strip()  # the floor is a perfect reader's chance
    assert float(exact.split("|")[2].strip().rstrip("%")) <= 5.0

    comp = scene_set / "images" / "val_compositional"
    assert main(["eval-adherence", str(comp), "--data", str(scene_set), "--split", "val_compositional",
                 "--num", "20"]) == 0
    assert "| exact | 100.0% |" in capsys.readouterr().out


def test_cli_npz_samples(scene_set, tmp_path, capsys):
    entries, _ = adherence.load_entries(scene_set, "val")
    images = adherence.load_images(scene_set / "images" / "val", entries)
    np.savez(tmp_path / "samples.npz", images)
    assert main(["eval-adherence", str(tmp_path / "samples.npz"), "--data", str(scene_set)]) == 0
    assert "| exact | 100.0% |" in capsys.readouterr().out


def test_cli_bad_input_one_line(scene_set, tmp_path, capsys):
    entries, _ = adherence.load_entries(scene_set, "val")
    images = adherence.load_images(scene_set / "images" / "val", entries)
    val = str(scene_set / "images" / "val")
    np.savez(tmp_path / "short.npz", images[:59])
    assert main(["eval-adherence", str(tmp_path / "short.npz"), "--data", str(scene_set)]) == 2
    _one_line_error(capsys, "holds 59 images for 60 captions", "--num 59")
    np.savez(tmp_path / "big.npz", np.repeat(np.repeat(images, 2, 1), 2, 2))
    assert main(["eval-adherence", str(tmp_path / "big.npz"), "--data", str(scene_set)]) == 2
    _one_line_error(capsys, "64x64 px", "32x32 px")
    np.savez(tmp_path / "float.npz", images.astype(np.float32))
    assert main(["eval-adherence", str(tmp_path / "float.npz"), "--data", str(scene_set)]) == 2
    _one_line_error(capsys, "uint8")
    assert main(["eval-adherence", val, "--data", str(scene_set), "--split", "val_compositional"]) == 2
    _one_line_error(capsys, "the val split's renders, not the val_compositional split's")
    assert main(["eval-adherence", val, "--data", str(scene_set), "--split", "test"]) == 2
    _one_line_error(capsys, "no images in split 'test'")
    assert main(["eval-adherence", val, "--data", str(tmp_path)]) == 2
    _one_line_error(capsys, "no captions.jsonl")
    assert main(["eval-adherence", str(tmp_path / "missing.npz"), "--data", str(scene_set)]) == 2
    _one_line_error(capsys, "missing.npz")
    assert main(["eval-adherence", val, "--data", str(scene_set), "--num", "0"]) == 2
    _one_line_error(capsys, "--num must be a positive integer")
