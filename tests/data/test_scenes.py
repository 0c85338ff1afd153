"""The procedural scenes data set (textok.data.scenes): deterministic, captions agree with the pixels,
splits disjoint, held-out colour-shape pairs never in training, and the CLI fetch."""

import hashlib
import json
import re

import numpy as np
import pytest
from PIL import Image

from textok.cli import main
from textok.data import open_dataset
from textok.data import scenes
from textok.data.fetch import fetch


def _entries(root):
    return [json.loads(line) for line in (root / "captions.jsonl").read_text().splitlines()]


def _key(entry):
    return (entry["background"],) + tuple((o["cell"], o["colour"], o["shape"], o["size"], o["dx"], o["dy"])
                                          for o in entry["objects"])


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return fetch("scenes", tmp_path_factory.mktemp("scenes") / "s", count=300, seed=3)


def test_deterministic_bytes(tmp_path, small):
    again = fetch("scenes", tmp_path / "again", count=300, seed=3)
    files = sorted(p.relative_to(small).as_posix() for p in small.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again).as_posix() for p in again.rglob("*") if p.is_file())
    assert len(files) == 300 + 2 * 30 + 2  # images + captions.jsonl + manifest.json
    for f in files:
        assert (small / f).read_bytes() == (again / f).read_bytes(), f
    other = fetch("scenes", tmp_path / "other", count=300, seed=4)
    assert (other / "captions.jsonl").read_bytes() != (small / "captions.jsonl").read_bytes()


def test_captions_state_the_factors(small):
    entries = _entries(small)
    for e in entries:
        objs = e["objects"]
        assert 1 <= len(objs) <= scenes.MAX_OBJECTS
        assert [o["cell"] for o in objs] == sorted({o["cell"] for o in objs})  # distinct cells, reading order
        phrases = [f"a {o['size']} {o['colour']} {o['shape']} at {o['position']}" for o in objs]
        for p in phrases:
            assert p in e["caption"]
        assert e["caption"].endswith(f", on a {e['background']} background")
        split = lambda c: c.replace(" and ", ", ").split(", ")  # noqa: E731
        assert split(e["caption_shapes_colours"]) == [f"a {o['colour']} {o['shape']}" for o in objs]
        assert split(e["caption_shapes"]) == [f"a {o['shape']}" for o in objs]


def test_render_agrees_with_caption(small):
    """A detector reading the pixels where the caption says an object is finds the stated colour, and
    only background in the cells the caption leaves empty."""
    entries = _entries(small)
    checked = 0
    for e in entries:
        image = np.asarray(Image.open(small / e["file"]).convert("RGB"))
        assert image.shape == (32, 32, 3)
        corner = tuple(int(v) for v in image[0, 0])  # the top-left corner pixel is background or an object
        occupied = {o["cell"] for o in e["objects"]}
        if 0 not in occupied:
            assert corner == scenes.BACKGROUNDS[e["background"]]
        for o in e["objects"]:
            name, alpha = scenes.colour_at(image, o["x"], o["y"], o["radius"], e["background"])
            assert name == o["colour"] and alpha > 0.6, (e["file"], o, name, alpha)
            checked += 1
        for cell in set(range(9)) - occupied:
            row, col = divmod(cell, 3)
            _, alpha = scenes.colour_at(image, (col + 0.5) * 32 / 3, (row + 0.5) * 32 / 3, 32 / 9, e["background"])
            assert alpha < 0.05, (e["file"], cell, alpha)
    assert checked > 500


def test_splits_disjoint_and_no_compositional_leak(small):
    entries = _entries(small)
    by = {s: [e for e in entries if e["split"] == s] for s in scenes.SPLITS}
    assert [len(by[s]) for s in scenes.SPLITS] == [300, 30, 30]
    keys = {s: {_key(e) for e in v} for s, v in by.items()}
    assert sum(len(k) for k in keys.values()) == len(entries)  # no scene twice, within or across splits
    digests = {s: {hashlib.sha256((small / e["file"]).read_bytes()).hexdigest() for e in v} for s, v in by.items()}
    assert not digests["train"] & digests["val"] and not digests["train"] & digests["val_compositional"]
    held = {tuple(p) for p in scenes.HELDOUT_PAIRS}
    pairs = lambda es: {(o["colour"], o["shape"]) for e in es for o in e["objects"]}  # noqa: E731
    assert not pairs(by["train"]) & held and not pairs(by["val"]) & held
    assert all(any((o["colour"], o["shape"]) in held for o in e["objects"]) for e in by["val_compositional"])
    # the held-out colours and shapes themselves are trained, only their pairing is new
    colours, shapes = {c for c, _ in pairs(by["train"])}, {s for _, s in pairs(by["train"])}
    assert {c for c, _ in held} <= colours and {s for _, s in held} <= shapes


def test_no_compositional_leak_at_scale():
    """20k train scenes (factors only, no rendering) hold no held-out pair."""
    out = scenes.generate_scenes(20_000, 10, 32, seed=0)
    held = set(scenes.HELDOUT_PAIRS)
    assert not any((o["colour"], o["shape"]) in held for s in out["train"] for o in s["objects"])


def test_caption_bits_and_manifest(small):
    bits = scenes.caption_bits()
    assert 0 < bits["shapes"] < bits["shapes_colours"] < bits["full"]
    assert 20 < bits["full"] < 23  # 1-3 objects x (44 colour-shape pairs, 2 sizes) + cells + 4 backgrounds
    manifest = json.loads((small / "manifest.json").read_text())
    assert manifest["caption_bits"]["full"] == round(bits["full"], 2)
    assert manifest["splits"] == {"train": 300, "val": 30, "val_compositional": 30}


def test_cli_fetch_and_caption_variants(tmp_path, capsys):
    root = tmp_path / "cli"
    assert main(["data", "fetch", "scenes", "--root", str(root), "--count", "20", "--size", "24", "--seed", "1"]) == 0
    assert "24 images" in capsys.readouterr().out  # 20 train + 2 val + 2 val_compositional
    ds = open_dataset(root, "train", image_size=24)
    assert len(ds) == 20 and ds[0]["image"].shape == (3, 24, 24)
    full = open_dataset(root, "val_compositional", image_size=24)[0]["caption"]
    shapes = open_dataset(root, "val_compositional", image_size=24, caption_variant="shapes")[0]["caption"]
    colours = open_dataset(root, "val_compositional", image_size=24, caption_variant="shapes_colours")[0]["caption"]
    assert "background" in full and "background" not in colours and set(shapes.split()) < set(full.split())
    assert set(colours.split()) - set(shapes.split())  # the colours
    with pytest.raises(ValueError, match="caption_positions"):
        open_dataset(root, "train", image_size=24, caption_variant="positions")
    # fetching again with the same recipe is a no-op; an option another data set takes is refused
    stamp = (root / "captions.jsonl").stat().st_mtime_ns
    assert main(["data", "fetch", "scenes", "--root", str(root), "--count", "20", "--size", "24", "--seed", "1"]) == 0
    assert (root / "captions.jsonl").stat().st_mtime_ns == stamp
    with pytest.raises(ValueError, match="--limit"):
        fetch("scenes", tmp_path / "x", limit=3)


def test_parse_caption_inverts_the_full_caption():
    """caption -> scene -> caption over many sampled scenes (train and compositional); offsets read as 0."""
    rng = np.random.default_rng(17)
    for i in range(500):
        scene = scenes.sample_scene(rng, 32, compositional=i % 5 == 0)
        caption = scenes.scene_captions(scene)["full"]
        parsed = scenes.parse_caption(caption)
        assert scenes.scene_captions(parsed)["full"] == caption
        assert parsed == {"background": scene["background"],
                          "objects": [dict(o, dx=0, dy=0) for o in scene["objects"]]}
    assert scenes.parse_caption("  A Large RED circle at top  left, on a grey background.") == scenes.parse_caption(
        "a large red circle at top left, on a grey background")


@pytest.mark.parametrize("text, named", [
    ("a huge red circle at top left, on a grey background", "'huge'"),
    ("a large pink circle at top left, on a grey background", "'pink'"),
    ("a large red blob at top left, on a grey background", "'blob'"),
    ("a large red circle at the moon, on a grey background", "'the moon'"),
    ("a large red circle at top left, on a pink background", "'pink'"),
    ("a red circle at top left, on a grey background", "'a red circle at top left'"),
    ("a large red circle at top left", "on a <background> background"),
    ("a small red circle at center and a large blue ring at center, on a navy background", "two objects at center"),
    (", on a grey background", "states 0 objects"),
    ("a small red circle at top left, a small red circle at top right, a small red circle at center and "
     "a small red circle at bottom left, on a grey background", "states 4 objects"),
])
def test_parse_caption_names_the_bad_phrase(text, named):
    with pytest.raises(ValueError, match=re.escape(named)):
        scenes.parse_caption(text)


@pytest.mark.parametrize("factor", scenes.SWAP_FACTORS)
def test_swap_scene_changes_one_factor(factor):
    rng = np.random.default_rng(5)
    for i in range(200):
        scene = scenes.sample_scene(rng, 32)
        before = json.dumps(scene)
        by_index, text = scenes.swap_scene(scene, factor, i)
        by_rng, _ = scenes.swap_scene(scene, factor, rng)
        assert json.dumps(scene) == before  # the input is left alone
        assert text.startswith(f"{factor}: ")
        for new in (by_index, by_rng):
            if factor == "background":
                assert new["background"] != scene["background"] and new["objects"] == scene["objects"]
                continue
            assert new["background"] == scene["background"]
            diff = [j for j, (a, b) in enumerate(zip(scene["objects"], new["objects"])) if a != b]
            assert len(diff) == 1 and len(new["objects"]) == len(scene["objects"])
            a, b = scene["objects"][diff[0]], new["objects"][diff[0]]
            changed = {k for k in a if a[k] != b[k]}
            assert changed == ({"colour"} if factor == "colour" else {"cell", "position"})
            assert len({o["cell"] for o in new["objects"]}) == len(new["objects"])  # cells stay distinct
            assert b["position"] == scenes.POSITIONS[b["cell"]]
        if factor != "background":  # the index picks the object
            j = i % len(scene["objects"])
            assert by_index["objects"][j] != scene["objects"][j]
        # the edited caption parses back to the edited scene
        assert scenes.parse_caption(scenes.scene_captions(by_index)["full"]) == {
            "background": by_index["background"], "objects": [dict(o, dx=0, dy=0) for o in by_index["objects"]]}


def test_swap_scene_refuses_what_it_cannot_edit():
    scene = {"background": "grey", "objects": [dict(colour="red", shape="circle", size="small", cell=c, dx=0, dy=0,
                                                    position=scenes.POSITIONS[c]) for c in range(9)]}
    with pytest.raises(ValueError, match="free cell"):
        scenes.swap_scene(scene, "position", 0)
    with pytest.raises(ValueError, match="unknown swap factor 'shape'"):
        scenes.swap_scene(scene, "shape", 0)
    with pytest.raises(ValueError, match="rng_or_index"):
        scenes.swap_scene(scene, "colour", 0.5)
