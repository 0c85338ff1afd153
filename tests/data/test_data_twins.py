"""The twin check (``split_twins``, ``textok data check``): evaluation images that share a caption or a
base name with a training image are counted per split, with a warning above TWIN_WARN_FRACTION."""

import pytest

from textok.cli import main as cli_main
from textok.data.check import TWIN_WARN_FRACTION, split_twins


@pytest.fixture
def rendered(tmp_path, make_image, make_jsonl):
    """An emoji-like folder: 6 train items in style a; 'recall' holds 4 of them in style b (3 under the
    training caption, 1 re-captioned) plus 1 new item; 'new' holds 5 items never in train; 'tone' holds a
    skin-tone sibling (same base, its own caption)."""
    root = tmp_path / "rendered"
    entries = []

    def add(split, style, item, caption, base=None):
        path = f"images/{style}/{item}.png"
        make_image(root / path, size=(8, 8), seed=len(entries))
        entries.append({"file": path, "caption": caption, "split": split, "style": style,
                        "base": base or item})

    for i in range(6):
        add("train", "a", f"e{i}", f"emoji {i}")
    for i in range(3):
        add("recall", "b", f"e{i}", f"emoji {i}")  # the same item in another style, same caption
    add("recall", "b", "e3", "emoji three, restyled")  # same base, another caption
    add("recall", "b", "e9", "emoji 9")  # genuinely new
    for i in range(10, 15):
        add("new", "b", f"e{i}", f"emoji {i}")
    add("tone", "a", "e0-tone", "emoji 0, dark skin tone", base="e0")
    make_jsonl(root / "captions.jsonl", entries)
    return root


def test_counts_caption_and_base_twins_per_split(rendered):
    twins = split_twins(rendered)
    assert set(twins) == {"recall", "new", "tone"}  # every split but train
    r = twins["recall"]
    assert (r.num_images, r.caption_twins, r.base_twins, r.base_field) == (5, 3, 4, "base")
    assert r.warn and r.measures == "recall"
    n = twins["new"]
    assert (n.num_images, n.caption_twins, n.base_twins) == (5, 0, 0)
    assert not n.warn and n.measures == "new"
    t = twins["tone"]  # a sibling under its own caption: a base twin only
    assert (t.caption_twins, t.base_twins) == (0, 1) and t.warn
    assert "3 of 5 (60.0%) share their caption" in r.summary() and "WARNING" in r.summary()
    assert "WARNING" not in n.summary()
    assert set(split_twins(rendered, ["new"])) == {"new"}


def test_threshold_is_a_share_not_a_count(tmp_path, make_image, make_jsonl):
    """One caption twin among 20 images (5%) stays under the 10% warning; 3 of 20 (15%) is over it."""
    assert TWIN_WARN_FRACTION == 0.10
    for shared, warned in ((1, False), (3, True)):
        root = tmp_path / f"s{shared}"
        entries = [{"file": f"t{i}.png", "caption": f"train {i}", "split": "train"} for i in range(5)]
        entries += [{"file": f"v{i}.png", "caption": f"train {i}" if i < shared else f"val {i}", "split": "val"}
                    for i in range(20)]
        for e in entries:
            make_image(root / e["file"], size=(8, 8))
        make_jsonl(root / "captions.jsonl", entries)
        v = split_twins(root)["val"]
        assert (v.caption_twins, v.base_twins, v.warn) == (shared, None, warned)  # no base field: not counted


def test_class_tree_has_no_per_image_captions(class_tree):
    t = split_twins(class_tree)["test"]
    assert t.caption_twins is None and not t.warn and "per class" in t.note


def test_shards_are_checked_from_their_json(folder_dataset, tmp_path):
    from textok.data import write_shards

    write_shards(folder_dataset, tmp_path / "shards", samples_per_shard=3)
    v = split_twins(tmp_path / "shards")["val"]
    assert (v.num_images, v.caption_twins) == (2, 0)


def test_cli_prints_the_twins_and_keeps_its_exit_status(rendered, capsys):
    assert cli_main(["data", "check", str(rendered), "--image-size", "8"]) == 0  # a warning, not a failure
    out = capsys.readouterr().out
    assert "recall: 3 of 5 (60.0%) share their caption with a train image; 4 of 5 (80.0%) share their 'base'" in out
    assert "new: 0 of 5 (0.0%)" in out and out.count("WARNING") == 2  # recall and tone
