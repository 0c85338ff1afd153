"""Each on-disk format loads into the same items; shards split across workers; transforms."""

import json
import random

import numpy as np
import pytest
import torch
from PIL import Image

from textok.data import (
    ShardDataset,
    collate,
    detect_format,
    list_splits,
    load_caption_pool,
    open_dataset,
    to_tensor,
    write_shards,
)
from textok.data.transforms import load_image, random_crop


def _check_item(item, size):
    assert item["image"].shape == (3, size, size) and item["image"].dtype == torch.float32
    assert -1.0 <= item["image"].min() and item["image"].max() <= 1.0
    assert isinstance(item["caption"], str) and item["caption"]
    assert isinstance(item["label"], int) and isinstance(item["key"], str)


def test_folder_dataset_splits_and_collate(folder_dataset):
    assert detect_format(folder_dataset) == "folder"
    assert list_splits(folder_dataset) == ["train", "val"]
    train, val = open_dataset(folder_dataset, "train", image_size=32), open_dataset(folder_dataset, "val", image_size=32)
    assert len(train) == 4 and len(val) == 2
    item = val[0]
    _check_item(item, 32)
    assert item == {**item, "caption": "picture number 4", "label": 0, "key": "img/4.png"}
    batch = collate([train[i] for i in range(4)])
    assert batch["images"].shape == (4, 3, 32, 32)
    assert batch["labels"].tolist() == [0, 1, 0, 1] and batch["labels"].dtype == torch.long
    assert batch["captions"][1] == "picture number 1" and batch["keys"][1] == "img/1.png"
    with pytest.raises(ValueError, match="no entries of split 'test'"):
        open_dataset(folder_dataset, "test")


def test_folder_without_split_field_is_all_train(tmp_path, make_image, make_jsonl):
    make_image(tmp_path / "a.jpg", size=(50, 30))
    make_jsonl(tmp_path / "captions.jsonl", [{"file": "a.jpg", "caption": "  a  wide   image "}])
    ds = open_dataset(tmp_path, image_size=24)
    assert len(ds) == 1 and ds[0]["label"] == -1 and ds[0]["caption"] == "a wide image"
    assert ds[0]["image"].shape == (3, 24, 24)


def test_eval_crop_deterministic_train_crop_random(tmp_path, make_image, make_jsonl):
    make_image(tmp_path / "wide.png", size=(60, 30))
    make_jsonl(tmp_path / "captions.jsonl", [{"file": "wide.png", "caption": "a wide picture"}])
    ev = open_dataset(tmp_path, image_size=16)
    assert torch.equal(ev[0]["image"], ev[0]["image"])
    tr = open_dataset(tmp_path, image_size=16, train=True, seed=0)
    crops = [tr[0]["image"] for _ in range(8)]
    assert any(not torch.equal(crops[0], c) for c in crops[1:])
    tr.reseed(5)
    a = tr[0]["image"]
    tr.reseed(5)
    assert torch.equal(a, tr[0]["image"])


def test_caption_variants_in_loader(folder_dataset):
    assert open_dataset(folder_dataset, image_size=32, caption_variant="class")[1]["caption"] == "dog"
    assert open_dataset(folder_dataset, image_size=32, caption_variant="short")[0]["caption"] == "a photo of a cat"
    with pytest.raises(ValueError, match="caption_variant"):
        open_dataset(folder_dataset, caption_variant="long")


def test_class_tree(class_tree):
    assert detect_format(class_tree) == "class-tree"
    assert list_splits(class_tree) == ["test", "train"]
    ds = open_dataset(class_tree, "train", image_size=32)
    assert len(ds) == 6
    items = [ds[i] for i in range(6)]
    for it in items:
        _check_item(it, 32)
    assert [it["label"] for it in items] == [0, 0, 0, 1, 1, 1]
    assert {it["caption"] for it in items[:3]} <= {"a cat", "a small cat"}
    assert items[3]["caption"] == "a dog" and items[0]["key"] == "train/cat/0.png"
    # training draws from the pool at random
    tr = open_dataset(class_tree, "train", image_size=32, train=True)
    assert {tr[0]["caption"] for _ in range(30)} == {"a cat", "a small cat"}
    assert len(open_dataset(class_tree, "test", image_size=32)) == 2
    assert load_caption_pool(class_tree, heldout=True)["dog"] == ["an unseen dog"]


def test_class_tree_without_pool_uses_template(tmp_path, make_image):
    make_image(tmp_path / "tree" / "red_fox" / "a.png")
    ds = open_dataset(tmp_path / "tree", image_size=32)
    assert ds[0]["caption"] == "a photo of a red fox" and ds[0]["label"] == 0


def test_shards_roundtrip_and_two_workers(folder_dataset, tmp_path):
    dst = tmp_path / "shards"
    index = write_shards(folder_dataset, dst, samples_per_shard=1)
    assert index["splits"]["train"]["num_samples"] == 4 and len(index["splits"]["train"]["shards"]) == 4
    assert detect_format(dst) == "shards" and list_splits(dst) == ["train", "val"]
    ds = open_dataset(dst, "train", image_size=32)
    assert isinstance(ds, ShardDataset) and len(ds) == 4
    items = list(ds)
    ref = open_dataset(folder_dataset, "train", image_size=32)
    by_key = {it["key"]: it for it in items}
    for i in range(len(ref)):
        r = ref[i]
        assert torch.equal(by_key[r["key"]]["image"], r["image"]) and by_key[r["key"]]["caption"] == r["caption"]
        assert by_key[r["key"]]["label"] == r["label"]
    # 2 DataLoader workers: every sample exactly once (shard-level split) ...
    loader = torch.utils.data.DataLoader(ds, batch_size=1, num_workers=2, collate_fn=collate)
    keys = [k for b in loader for k in b["keys"]]
    assert sorted(keys) == sorted(by_key)
    # ... and with fewer shards than workers (sample-level split), also under shuffling
    write_shards(folder_dataset, tmp_path / "one", samples_per_shard=100)
    one = open_dataset(tmp_path / "one", "train", image_size=32, train=True)
    loader = torch.utils.data.DataLoader(one, batch_size=2, num_workers=2, collate_fn=collate)
    keys = [k for b in loader for k in b["keys"]]
    assert sorted(keys) == sorted(by_key)


def test_shards_split_by_node(folder_dataset, tmp_path, monkeypatch):
    import textok.data.shards as shards

    write_shards(folder_dataset, tmp_path / "s", samples_per_shard=3)  # 2 train shards (3 + 1 samples)
    seen = []
    for rank in range(2):
        monkeypatch.setattr(shards, "consumer_rank", lambda rank=rank: (rank, 2))
        seen.append([it["key"] for it in open_dataset(tmp_path / "s", "train", image_size=32)])
    assert not set(seen[0]) & set(seen[1]) and len(seen[0]) + len(seen[1]) == 4


def test_shards_readable_by_webdataset(folder_dataset, tmp_path):
    wds = pytest.importorskip("webdataset")
    write_shards(folder_dataset, tmp_path / "s", samples_per_shard=10)
    samples = list(wds.WebDataset(str(tmp_path / "s" / "train-000000.tar"), shardshuffle=False))
    assert len(samples) == 4
    assert json.loads(samples[0]["json"])["caption"] == samples[0]["txt"].decode()


def test_class_tree_shards_keep_caption_pool(class_tree, tmp_path):
    write_shards(class_tree, tmp_path / "s")
    ds = open_dataset(tmp_path / "s", "train", image_size=32, train=True, seed=1)
    caps = set()
    for epoch in range(10):  # a new caption draw per epoch
        ds.set_epoch(epoch)
        caps |= {it["caption"] for it in ds if it["label"] == 0}
    assert caps == {"a cat", "a small cat"}


def test_transforms_modes(tmp_path):
    rgba = np.zeros((8, 8, 4), np.uint8)  # fully transparent -> white
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    assert torch.all(to_tensor(load_image(tmp_path / "a.png")) == 1.0)
    Image.fromarray(np.full((8, 8), 0, np.uint8), "L").save(tmp_path / "g.png")
    grey = load_image(tmp_path / "g.png")
    assert grey.mode == "RGB" and to_tensor(grey).min() == -1.0
    Image.fromarray(np.full((8, 8), 3, np.uint8), "L").convert("P").save(tmp_path / "p.png")
    assert load_image(tmp_path / "p.png").mode == "RGB"
    img = Image.fromarray(np.arange(64 * 48 * 3, dtype=np.uint32).reshape(48, 64, 3).astype(np.uint8))
    # flip is off by default: every crop of a left-right asymmetric image keeps its orientation
    crop = random_crop(img, 48, random.Random(0))
    assert crop.size == (48, 48)
