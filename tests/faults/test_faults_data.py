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
    from textok.data import captioning

    from .conftest import write_image

    fake = _FakeCaptioner()
    monkeypatch.setattr(captioning, "load_captioner", lambda path, device: (fake, fake, fake))
    for i in range(3):
        write_image(tmp_path / f"{i}.png", seed=i)
    original = [b'{"file": "0.png", "caption": "by hand", "split": "val"}', b"{not json",
                b'\xff\xfe broken bytes', b'{"file": "1.png", "split": "val"}']
    (tmp_path / "captions.jsonl").write_bytes(b"\n".join(original) + b"\n")
    report = captioning.caption_folder(tmp_path, "unused")
    assert report.total == 2 and report.num_bad == 0
    lines = (tmp_path / "captions.jsonl").read_bytes().split(b"\n")
    assert lines[:3] == original[:3]  # unreadable lines kept verbatim, in place
    assert json.loads(lines[3]) == {"file": "1.png", "split": "val", "caption": "a test image"}  # filled in
    assert json.loads(lines[4]) == {"file": "2.png", "caption": "a test image"} and lines[5:] == [b""]


def _with_bad_images(folder, bad=(2, 5)):
    for i in bad:
        (folder / "img" / f"{i}.png").write_bytes(b"not a png")
    return folder


def test_bad_image_is_skipped_not_replaced(folder):
    from textok.data import collate, open_dataset

    ds = open_dataset(_with_bad_images(folder), "train", image_size=32)
    items = [ds[i] for i in range(len(ds))]
    assert [it is None for it in items] == [False, False, True, False, False, True]
    batch = collate(items)
    assert batch["keys"] == ["img/0.png", "img/1.png", "img/3.png", "img/4.png"]  # no duplicates
    assert ds.report.num_bad == 2 and collate([None, None]) is None


def test_a_bad_file_is_reported_once(folder, caplog):
    """Training, its preview batch and evaluation open the same split: each bad file is warned
    about once per process, not once per reader (the counts stay per data set)."""
    from textok.data import open_dataset

    root = _with_bad_images(folder)
    with caplog.at_level("WARNING", logger="textok.data.datasets"):
        for _ in range(2):
            ds = open_dataset(root, "train", image_size=32)
            [ds[i] for i in range(len(ds))]
            assert ds.report.num_bad == 2
    assert sum("skipping bad sample" in r.getMessage() for r in caplog.records) == 2


def test_fid_stats_and_eval_batches_skip_bad_images(folder):
    from textok.data import open_dataset
    from textok.metrics import iterate_batches

    ds = open_dataset(_with_bad_images(folder), "train", image_size=32)
    keys = [k for b in iterate_batches(ds, None, 2) for k in b["keys"]]
    assert keys == ["img/0.png", "img/1.png", "img/3.png", "img/4.png"]


def test_encode_dataset_counts_only_usable_images(folder, tmp_path, capsys):
    from textok import TexTok, TexTokConfig
    from textok.latents import LatentCache

    tok = tmp_path / "tok"
    TexTok(TexTokConfig.from_preset("textok-mini-32", width=32, depth=1, heads=4, num_tokens=8, max_text_tokens=16,
                                    text_in="none")).save_pretrained(tok)
    _with_bad_images(folder)
    out = tmp_path / "cache"
    assert main(["encode-dataset", "--checkpoint", str(tok), "--data", str(folder), "--out", str(out),
                 "--batch-size", "4", "--shard-size", "4"]) == 0
    out_text = capsys.readouterr().out
    assert "cached 4 images" in out_text and "2 bad image(s) skipped" in out_text
    cache = LatentCache(out)
    assert len(cache) == 4 and cache.keys == ["img/0.png", "img/1.png", "img/3.png", "img/4.png"]
