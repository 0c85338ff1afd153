"""The scenes adherence scorer (textok.metrics.scenes): every factor right on real renders (the ceiling),
chance on renders paired with another scene's caption (the floor), and bad input refused in one line."""

import json

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from textok.data import scenes
from textok.data.fetch import fetch_scenes
from textok.metrics import scenes as adherence


@pytest.fixture(scope="module")
def scene_set(tmp_path_factory):
    """120 freshly rendered val and val_compositional scenes at 32 px (another seed than the data sets studied)."""
    root = fetch_scenes(tmp_path_factory.mktemp("scenes") / "s", count=10, eval_count=120, seed=11)
    entries, size = adherence.load_entries(root, "val")
    return root, entries, adherence.load_images(root / "images" / "val", entries), size


def test_ceiling_every_factor_reads_right_on_renders(scene_set):
    root, entries, images, size = scene_set
    assert size == 32 and images.shape == (120, 32, 32, 3)
    report = adherence.score_adherence(images, entries, size=size)
    summary = report["summary"]
    assert summary["images"]["exact"] >= 0.98  # the bar; the reader is in fact exact on renders
    assert all(v == 1.0 for v in summary["images"].values()) and all(v == 1.0 for v in summary["objects"].values())
    first = report["images"][0]
    assert first["file"] == entries[0]["file"] and first["exact"] and first["extra_cells"] == []
    assert set(first["read"]["objects"]) == {str(o["cell"]) for o in entries[0]["objects"]}
    # held-out colour-shape pairs are read as well as the trained ones
    comp, _ = adherence.load_entries(root, "val_compositional")
    comp_summary = adherence.score_adherence(adherence.load_images(root / "images" / "val_compositional", comp),
                                             comp, size=32)["summary"]
    assert comp_summary["images"]["exact"] == 1.0


def test_floor_is_chance_on_another_scenes_caption(scene_set):
    _, entries, images, size = scene_set
    n = len(entries)
    for shift in (1, 7):
        paired = [entries[(i + shift) % n] for i in range(n)]
        summary = adherence.score_adherence(images, paired, size=size)["summary"]
        # the reader is right, so it scores what two independent scenes share: a perfect reader's rates
        assert summary == adherence.chance(entries, shift)
        assert summary["images"]["exact"] <= 0.02
        assert summary["objects"]["colour"] <= 0.08 and summary["objects"]["shape"] <= 0.1
        assert 0.1 <= summary["images"]["background"] <= 0.45  # 1 of 4 backgrounds
        assert 0.1 <= summary["objects"]["present"] <= 0.4  # ~2 of 9 cells hold an object


def test_blank_and_wrong_images_score_low(scene_set):
    _, entries, images, size = scene_set
    blank = np.stack([np.broadcast_to(np.asarray(scenes.BACKGROUNDS[e["background"]], np.uint8), (32, 32, 3))
                      for e in entries])
    summary = adherence.score_adherence(blank, entries, size=size)["summary"]
    assert summary["images"]["background"] == 1.0 and summary["objects"]["present"] == 0.0
    assert summary["images"]["exact"] == 0.0 and summary["images"]["empty"] == 1.0
    # one object recoloured: only that object's colour (and exact) fail
    e = entries[0]
    o = e["objects"][0]
    new = next(c for c in scenes.COLOURS if c != o["colour"])
    scene = {"background": e["background"], "objects": [dict(p, colour=new) if p is o else p for p in e["objects"]]}
    image = np.asarray(scenes.render_scene(scene, 32))
    r = adherence.score_adherence(image[None], [e], size=32)["images"][0]
    assert r["objects"][0] == {"present": True, "colour": False, "shape": True, "size": True}
    assert r["background"] and r["empty"] and not r["colour"] and not r["exact"]


def test_soft_images_still_read(scene_set):
    """Reconstructions are soft: a Gaussian blur of 0.8 px (not one of the templates' blurs) keeps every factor."""
    _, entries, images, size = scene_set
    soft = np.clip(np.round(gaussian_filter(images.astype(np.float64), (0, 0.8, 0.8, 0))), 0, 255).astype(np.uint8)
    summary = adherence.score_adherence(soft, entries, size=size)["summary"]
    assert summary["images"]["exact"] >= 0.95 and summary["images"]["colour"] == 1.0


def test_read_scene_needs_no_caption():
    scene = {"background": "navy", "objects": [
        {"colour": "blue", "shape": "ring", "size": "small", "cell": 0, "dx": 2, "dy": -3},
        {"colour": "white", "shape": "cross", "size": "large", "cell": 4, "dx": 0, "dy": 0},
        {"colour": "purple", "shape": "triangle", "size": "small", "cell": 8, "dx": -5, "dy": 5}]}
    reading = adherence.read_scene(np.asarray(scenes.render_scene(scene, 32)))
    assert reading.background == "navy"
    assert {c: (o["colour"], o["shape"], o["size"]) for c, o in reading.objects.items()} == {
        0: ("blue", "ring", "small"), 4: ("white", "cross", "large"), 8: ("purple", "triangle", "small")}


def test_bad_input_is_refused(scene_set, tmp_path):
    root, entries, images, size = scene_set
    with pytest.raises(ValueError, match="119 images for 120 caption entries"):
        adherence.score_adherence(images[:-1], entries, size=size)
    with pytest.raises(ValueError, match="image 0 is 64 px, the data set's scenes are 32 px"):
        adherence.score_adherence(np.zeros((120, 64, 64, 3), np.uint8), entries, size=size)
    with pytest.raises(ValueError, match="square RGB uint8"):
        adherence.score_adherence(images.astype(np.float32), entries)
    with pytest.raises(ValueError, match="not a scenes data set|no scenes factors"):
        adherence.score_adherence(images[:1], [{"file": "x.png", "caption": "a cat"}])
    # files: an .npz of another count, a folder missing a file, a data set that is not scenes
    np.savez(tmp_path / "short.npz", images[:100])
    with pytest.raises(ValueError, match="holds 100 images for 120 captions.*--num 100"):
        adherence.load_images(tmp_path / "short.npz", entries)
    folder = tmp_path / "pngs"
    folder.mkdir()
    with pytest.raises(ValueError, match="120 of the 120 images the captions name are missing"):
        adherence.load_images(folder, entries)
    with pytest.raises(ValueError, match="--num 121: split 'val' has only 120"):
        adherence.load_entries(root, "val", num=121)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "captions.jsonl").write_text(json.dumps({"file": "a.png", "caption": "a"}) + "\n")
    with pytest.raises(ValueError, match="not a scenes data set"):
        adherence.load_entries(tmp_path / "other", "val")


def test_inputs_npz_and_png_folder_agree(scene_set, tmp_path):
    from PIL import Image

    root, entries, images, size = scene_set
    entries, images = entries[:12], images[:12]
    np.savez(tmp_path / "samples.npz", images)  # textok sample-fid's layout: arr_0
    folder = tmp_path / "generated"
    folder.mkdir()
    for e, im in zip(entries, images):  # named as the split's files, without their folders
        Image.fromarray(im).save(folder / e["file"].rsplit("/", 1)[-1])
    a = adherence.evaluate_adherence(tmp_path / "samples.npz", root, "val", num=12)
    b = adherence.evaluate_adherence(folder, root, "val", num=12)
    assert a["summary"] == b["summary"] and a["summary"]["images"]["exact"] == 1.0
    assert "| exact | 100.0% |" in a["markdown"] and a["chance"] is None
    floor = adherence.evaluate_adherence(folder, root, "val", num=12, shift=1)
    assert floor["summary"] == floor["chance"] and "chance: images" in floor["markdown"]


def test_edit_shown_on_renders_of_the_edit_and_of_the_original():
    """A render of the edited scene shows the edit (every factor, every scene); the render of the original does not;
    a render that gets something else wrong still shows the edit."""
    rng = np.random.default_rng(3)
    for i in range(60):
        scene = scenes.sample_scene(rng, 32)
        for factor in scenes.SWAP_FACTORS:
            edited, _ = scenes.swap_scene(scene, factor, i)
            truth = np.asarray(scenes.render_scene(edited, 32))[None]
            original = np.asarray(scenes.render_scene(scene, 32))[None]
            for image, shown in ((truth, True), (original, False)):
                judged = adherence.score_adherence(image, [edited])["images"][0]
                assert adherence.edit_shown(judged, scene, edited) is shown, (factor, scene, edited)
    scene = {"background": "grey", "objects": [
        dict(colour="red", shape="circle", size="large", position="top left", cell=0, dx=0, dy=0),
        dict(colour="blue", shape="square", size="small", position="center", cell=4, dx=0, dy=0)]}
    edited, _ = scenes.swap_scene(scene, "colour", 0)  # the red circle turns purple
    wrong_elsewhere = dict(edited, objects=[edited["objects"][0], dict(edited["objects"][1], colour="green")])
    judged = adherence.score_adherence(np.asarray(scenes.render_scene(wrong_elsewhere, 32))[None], [edited])
    assert adherence.edit_shown(judged["images"][0], scene, edited) and not judged["images"][0]["exact"]
    with pytest.raises(ValueError, match="no edit"):
        adherence.edit_shown(judged["images"][0], scene, scene)
