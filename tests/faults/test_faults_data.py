"""Data commands: never delete what they did not create; skip, never substitute; one-line errors."""

from __future__ import annotations

import json

import pytest

from textok.cli import main
from textok.data import fetch


def test_fetch_refuses_a_folder_it_did_not_create(tmp_path, capsys):
    root = tmp_path / "project"
    root.mkdir()
    (root / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="manifest.json"):
        fetch("photos", root)
    assert main(["data", "fetch", "photos", "--root", str(root)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(root) in err
    assert (root / "notes.txt").read_text() == "mine" and sorted(p.name for p in root.iterdir()) == ["notes.txt"]


def test_fetch_replaces_its_own_folder(tmp_path):
    root = tmp_path / "photos"
    root.mkdir()
    (root / "manifest.json").write_text(json.dumps({"recipe": {"dataset": "photos", "files": []}}))
    pytest.importorskip("skimage")
    pytest.importorskip("sklearn")
    fetch("photos", root)
    assert json.loads((root / "manifest.json").read_text())["num_images"] == 18


class _FakeCaptioner:
    """``load_captioner``'s (model, image_processor, tokenizer), captioning every image "a test image"."""

    def generate(self, pixel_values, max_new_tokens):
        return [[0]] * len(pixel_values)

    def __call__(self, images, return_tensors):
        import torch

        return {"pixel_values": torch.zeros(len(images), 3, 8, 8)}

    def batch_decode(self, ids, skip_special_tokens):
        return ["a test image"] * len(ids)


def test_caption_keeps_lines_it_cannot_read(tmp_path, monkeypatch):
    from textok.data import captions

    from .conftest import write_image

    fake = _FakeCaptioner()
    monkeypatch.setattr(captions, "load_captioner", lambda path, device: (fake, fake, fake))
    for i in range(3):
        write_image(tmp_path / f"{i}.png", seed=i)
    original = [b'{"file": "0.png", "caption": "by hand", "split": "val"}', b"{not json",
                b'\xff\xfe broken bytes', b'{"file": "1.png", "split": "val"}']
    (tmp_path / "captions.jsonl").write_bytes(b"\n".join(original) + b"\n")
    report = captions.caption_folder(tmp_path, "unused")
    assert report.total == 2 and report.num_bad == 0
    lines = (tmp_path / "captions.jsonl").read_bytes().split(b"\n")
    assert lines[:3] == original[:3]  # unreadable lines kept verbatim, in place
    assert json.loads(lines[3]) == {"file": "1.png", "split": "val", "caption": "a test image"}  # filled in
    assert json.loads(lines[4]) == {"file": "2.png", "caption": "a test image"} and lines[5:] == [b""]
