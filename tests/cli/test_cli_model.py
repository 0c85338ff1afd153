import json

import numpy as np
import pytest
from PIL import Image

from textok import TexTok
from textok.cli import main


@pytest.fixture
def checkpoint(tmp_path, tiny_config):
    path = tmp_path / "ckpt"
    TexTok(tiny_config).save_pretrained(path)
    return path


@pytest.fixture
def images(tmp_path):
    rng = np.random.default_rng(0)
    rgba = Image.fromarray(rng.integers(0, 255, (50, 40, 4), dtype=np.uint8), "RGBA")
    grey = Image.fromarray(rng.integers(0, 255, (64, 80), dtype=np.uint8), "L")
    paths = [tmp_path / "rgba.png", tmp_path / "grey.jpg"]
    rgba.save(paths[0])
    grey.save(paths[1])
    return paths


def test_reconstruct_grid_and_folder(tmp_path, checkpoint, images, capsys):
    out = tmp_path / "grid.png"
    assert main(["reconstruct", *map(str, images), "--checkpoint", str(checkpoint), "--caption", "noise", "--out", str(out)]) == 0
    grid = Image.open(out)
    assert grid.size == (2 + 2 * 34, 2 + 2 * 34)  # 2 columns x (original row, reconstruction row) of 32 px
    folder = tmp_path / "recs"
    assert main(["reconstruct", *map(str, images), "--checkpoint", str(checkpoint),
                 "--caption", "a", "--caption", "b", "--out", str(folder)]) == 0
    assert sorted(p.name for p in folder.iterdir()) == ["grey_rec.png", "rgba_rec.png"]
    assert "reconstructed 2 image(s)" in capsys.readouterr().out


def test_reconstruct_errors_name_the_problem(tmp_path, checkpoint, images, capsys):
    bad = tmp_path / "notes.txt"
    bad.write_text("not an image")
    assert main(["reconstruct", str(bad), "--checkpoint", str(checkpoint), "--caption", "x", "--out", str(tmp_path / "o.png")]) == 2
    assert f"{bad}: not an image file" in capsys.readouterr().err
    assert main(["reconstruct", *map(str, images), "--checkpoint", str(checkpoint), "--out", str(tmp_path / "o.png")]) == 2
    assert "give --caption" in capsys.readouterr().err
    assert main(["reconstruct", *map(str, images), "--checkpoint", str(checkpoint), "--caption", "a",
                 "--caption", "b", "--caption", "c", "--out", str(tmp_path / "o.png")]) == 2
    assert "3 captions for 2 images" in capsys.readouterr().err
    assert main(["reconstruct", str(images[0]), "--checkpoint", str(tmp_path), "--caption", "x", "--out", str(tmp_path / "o.png")]) == 2
    assert "no config.json" in capsys.readouterr().err
    assert not (tmp_path / "o.png").exists()


def test_info(checkpoint, capsys, tiny_config):
    assert main(["info", str(checkpoint), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["token_shape"] == [tiny_config.num_tokens, tiny_config.token_dim]
    assert report["parameters"]["total"] == sum(p.numel() for p in TexTok(tiny_config).parameters())
    assert main(["info", str(checkpoint)]) == 0
    assert "token shape" in capsys.readouterr().out
