"""The library functions behind `textok app` (textok.explore): no Gradio needed."""

import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from textok import explore, pretrained
from textok.data.transforms import load_image, load_tensor
from textok.explore import (
    Explorer,
    UploadError,
    bundled_examples,
    display_name,
    load_upload,
    reconstruct_compare,
    swap_caption,
)
from textok.pretrained import shipped_checkpoints

# ---------------------------------------------------------------------------------------------
# uploads
# ---------------------------------------------------------------------------------------------


def _png_header_only(path, width, height):
    """A PNG whose header declares width x height but holds no pixel data (a bomb's shape)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    return path


@pytest.fixture
def no_decode(monkeypatch):
    """Fail the test if the upload is decoded (the refusals must come from size / header alone)."""
    def boom(*a, **k):
        raise AssertionError("the image was decoded")

    monkeypatch.setattr(explore, "load_image", boom)


def test_upload_reads_an_image_as_rgb(tmp_path):
    p = tmp_path / "rgba.png"
    Image.new("RGBA", (40, 30), (255, 0, 0, 128)).save(p)
    img = load_upload(p)
    assert img.mode == "RGB" and img.size == (40, 30)
    assert np.array_equal(np.asarray(img), np.asarray(load_image(p)))  # the data layer's compositing


def test_upload_over_the_byte_limit_is_refused_before_decoding(tmp_path, no_decode):
    p = tmp_path / "big.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(p)
    with pytest.raises(UploadError, match="over the .* upload limit"):
        load_upload(p, max_bytes=1000)


def test_upload_over_the_pixel_limit_is_refused_from_the_header(tmp_path, no_decode):
    p = tmp_path / "wide.png"
    Image.new("RGB", (2000, 1000), "white").save(p)  # a small file, many pixels
    assert p.stat().st_size < 50_000
    with pytest.raises(UploadError, match=r"2000 x 1000 = 2.0 megapixels, over the 1.0 megapixel limit"):
        load_upload(p, max_pixels=1_000_000)
    # a header claiming 100k x 100k (PIL's bomb threshold) and no data
    bomb = _png_header_only(tmp_path / "bomb.png", 100_000, 100_000)
    with pytest.raises(UploadError, match="bomb"):
        load_upload(bomb)
    huge = _png_header_only(tmp_path / "huge.png", 9000, 9000)  # under PIL's bomb limit, over ours
    with pytest.raises(UploadError, match="megapixel limit"):
        load_upload(huge)


def test_bad_uploads_are_explained_with_the_file_name(tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not an image at all")
    with pytest.raises(UploadError, match=r"^notes.png: not an image file PIL can read"):
        load_upload(text)
    good = tmp_path / "good.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(good)
    cut = tmp_path / "cut.png"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(UploadError, match="corrupt or truncated") as e:
        load_upload(cut, name="photo.png")
    assert str(tmp_path) not in str(e.value) and "photo.png" in str(e.value)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(UploadError, match="empty file"):
        load_upload(empty)
    with pytest.raises(UploadError, match="no image"):
        load_upload(None)
    with pytest.raises(UploadError, match="no such file"):
        load_upload(tmp_path / "missing.png")


def test_odd_modes_load_as_in_the_data_layer(tmp_path):
    files = {}
    files["grey16.png"] = Image.fromarray((np.arange(32 * 32, dtype=np.uint16).reshape(32, 32) * 60))
    files["cmyk.jpg"] = Image.new("CMYK", (32, 32), (0, 255, 255, 0))
    pal = Image.new("P", (32, 32), 1)
    pal.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    pal.info["transparency"] = 0
    files["palette.png"] = pal
    for name, img in files.items():
        img.save(tmp_path / name)
    frames = [Image.new("RGB", (32, 32), c) for c in ("red", "blue")]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    for name in list(files) + ["anim.gif"]:
        got = load_upload(tmp_path / name)
        assert got.mode == "RGB" and got.size == (32, 32), name
        assert np.array_equal(np.asarray(got), np.asarray(load_image(tmp_path / name))), name
        # an animated image says which frame was used; a still one says nothing
        assert explore.frame_note(got) == ("animated image: frame 1 of 2 used (the first, as in training data)"
                                           if name == "anim.gif" else ""), name
    assert np.asarray(load_upload(tmp_path / "anim.gif"))[0, 0].tolist() == [255, 0, 0]  # frame 1 is the red one


# ---------------------------------------------------------------------------------------------
# reconstruct, swap, sweep
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def picture():
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (48, 40, 3), dtype=np.uint8))


def test_reconstruct_compare_matches_the_library(explorer, picture, tmp_path, minilm, lpips_once):
    from textok.inference import reconstruct
    from textok.metrics.image import psnr

    pair = explorer.pair(2)
    r = reconstruct_compare(pair, picture, "a red square", lpips_once)
    assert list(r["images"]) == ["original", "baseline", "TexTok"]
    assert all(im.size == (32, 32) and im.mode == "RGB" for im in r["images"].values())
    path = tmp_path / "p.png"
    picture.save(path)
    ref = reconstruct([path], pair["TexTok"].model, ["a red square"], encoder=minilm)
    assert np.array_equal(np.asarray(r["images"]["TexTok"]), np.asarray(explore.to_pil(ref[0])))
    x = load_tensor(picture, 32)[None]
    assert r["psnr"]["TexTok"] == pytest.approx(float(psnr(ref, x)[0]))
    for label in ("baseline", "TexTok"):
        assert np.isfinite(r["psnr"][label]) and r["lpips"][label] is not None and r["lpips"][label] >= 0
    again = reconstruct_compare(pair, picture, "a red square", lpips_once)
    assert again["psnr"] == r["psnr"] and again["lpips"] == r["lpips"]


def test_empty_and_overlong_captions(explorer, picture):
    r = explorer.reconstruct(picture, "", 2)
    assert r["caption"]["TexTok"]["text_tokens"] == 2 and not r["caption"]["TexTok"]["truncated"]  # [CLS] [SEP]
    assert r["caption"]["baseline"] == {"caption": "", "text_tokens": 0, "truncated": False, "used": False}
    long = " ".join(f"word{i}" for i in range(200))
    r = explorer.reconstruct(picture, long, 2)  # the model takes at most 16 text tokens: cut, not refused
    assert r["caption"]["TexTok"]["text_tokens"] == 16 and r["caption"]["TexTok"]["truncated"]
    assert np.isfinite(r["psnr"]["TexTok"])
    # the cut caption decodes exactly like its first 16 tokens (what the encoder kept)
    tok = explorer.pair(2)["TexTok"]
    emb = tok.condition(long, 1)
    assert emb.embeddings.shape[1] == 16
    r_none = explorer.reconstruct(picture, None, 2)
    assert np.array_equal(np.asarray(r_none["images"]["TexTok"]), np.asarray(explorer.reconstruct(picture, "", 2)["images"]["TexTok"]))


def test_swap_caption_decodes_the_same_tokens(explorer, picture, lpips_once):
    tok = explorer.pair(2)["TexTok"]
    same = swap_caption(tok, picture, "a dog", "a dog", lpips_once)
    assert same["max_difference"] == 0 and same["psnr"]["between"] == float("inf")
    assert np.asarray(same["images"]["difference"]).max() == 0
    r = swap_caption(tok, picture, "a dog", "a bright red sports car", lpips_once)
    assert r["text_in_decoder"] and r["max_difference"] > 0 and np.isfinite(r["psnr"]["between"])
    assert set(r["images"]) == {"original", "reconstruction", "swapped", "difference"}
    # by hand: the tokens come from the first caption, the decode from the second
    x = load_tensor(picture, 32)[None]
    with torch.no_grad():
        tokens = tok.model.encode(x, tok.condition("a dog", 1))
        swapped = tok.model.decode(tokens, tok.condition("a bright red sports car", 1)).clamp(-1, 1)
    assert np.array_equal(np.asarray(r["images"]["swapped"]), np.asarray(explore.to_pil(swapped[0])))
    assert np.asarray(r["images"]["difference"]).max() == 255  # stretched to its largest change
    base = swap_caption(explorer.pair(2)["baseline"], picture, "a dog", "a car", lpips_once)
    assert not base["text_in_decoder"] and base["max_difference"] == 0


def test_the_arm_comes_from_the_config_not_the_flag(tiny_checkpoints, minilm, lpips_once):
    c, enc = tiny_checkpoints, {("minilm", "cpu"): minilm}
    e = Explorer([c["baseline-n2"], c["textok-n4"]], [c["textok-n2"]], encoders=enc, lpips=lpips_once)
    assert list(e.textok) == [2, 4] and list(e.baseline) == [2]
    assert display_name(e.pair(2)["baseline"]) == "baseline-n2" and display_name(e.pair(2)["TexTok"]) == "textok-n2"
    assert e.notes == [
        "baseline-n2 was given as --checkpoint but its config has text_in='none': shown as the no-text baseline",
        "textok-n2 was given as --baseline but its config has text_in='both': shown as TexTok"]
    assert "baseline N=2 (baseline-n2" in e.describe()
    with pytest.raises(ValueError, match="two checkpoints with N=2 tokens for baseline"):
        Explorer([c["baseline-n2"]], [c["baseline-n2"]], encoders=enc)


def test_explorer_pairs_by_token_count(explorer, tiny_checkpoints, picture, minilm):
    assert explorer.token_counts == [2, 4]
    assert explorer.pair(4)["baseline"] is None and explorer.pair()["TexTok"].config.num_tokens == 4
    r = explorer.reconstruct(picture, "x", 4)
    assert r["missing"] == ["baseline"] and "baseline" not in r["images"]
    sweep = explorer.sweep(picture, "x")
    assert [s["n"] for s in sweep] == [2, 4] and set(sweep[0]["images"]) == {"original", "baseline", "TexTok"}
    with pytest.raises(ValueError, match="no checkpoint with N=8"):
        explorer.pair(8)
    with pytest.raises(ValueError, match="two checkpoints with N=2"):
        Explorer([tiny_checkpoints["textok-n2"], tiny_checkpoints["textok-n2"]], encoders={("minilm", "cpu"): minilm})
    with pytest.raises(ValueError, match="no checkpoint"):
        Explorer([], [])
    with pytest.raises(ValueError, match="no DiT"):
        explorer.generate(prompt="x")


# ---------------------------------------------------------------------------------------------
# shipped checkpoints, examples, generation
# ---------------------------------------------------------------------------------------------


def test_shipped_checkpoint_lookup(tmp_path):
    assert shipped_checkpoints(tmp_path / "absent") == ([], [])
    for name in ("emoji32-textok-n16", "emoji32-textok-n2", "emoji32-textok-n8", "emoji32-baseline-n2"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text("{}")
    (tmp_path / "emoji32-baseline-n4").mkdir()  # no config.json: not a checkpoint
    textok, baseline = shipped_checkpoints(tmp_path)
    assert [p.name for p in textok] == ["emoji32-textok-n2", "emoji32-textok-n8", "emoji32-textok-n16"]
    assert [p.name for p in baseline] == ["emoji32-baseline-n2"]
    assert pretrained.PRETRAINED_DIR.name == "pretrained" and pretrained.PRETRAINED_DIR.parent.name == "textok"
    assert pretrained.find_pair(tmp_path) == {"num_tokens": 2, "textok": tmp_path / "emoji32-textok-n2",
                                              "baseline": tmp_path / "emoji32-baseline-n2"}
    with pytest.raises(FileNotFoundError, match="no shipped model 'nothing'"):
        pretrained.path("nothing")


def test_bundled_examples_are_held_out_and_load():
    examples = bundled_examples()
    assert len(examples) >= 4
    import json

    meta = json.loads((explore.EXAMPLES_DIR / "examples.json").read_text())
    assert all(e["split"] == "val_unseen" for e in meta["examples"])
    assert {e.split for e in examples} == {"val_unseen"}
    # the splits named for what they measure (issue 35)
    assert pretrained.split_label("val_unseen") == "val_unseen (new emoji)"
    assert pretrained.split_label("val") == "val (recall: other renderings of training emoji)"
    assert pretrained.split_label("test") == "test"
    for e in examples:
        assert e.caption and load_upload(e.path).mode == "RGB"


def test_generate_samples_with_a_tiny_pipeline(minilm, lpips_once, tiny_checkpoints):
    from textok import DiT, DiTConfig
    from textok.generation import GenerationConfig, Pipeline

    from .conftest import tiny_tokenizer

    tok = tiny_tokenizer(2)
    stats = dict(latent_mean=[0.0] * 8, latent_std=[1.0] * 8)
    dit = DiT(DiTConfig.from_preset("dit-tiny", num_tokens=2, token_dim=8, num_classes=3))
    pipe = Pipeline(dit, tok, GenerationConfig(tokenizer=".", classes=["a", "b", "c"], **stats), text_encoder=minilm)
    r = explore.generate_samples(pipe, class_id=1, cfg_scale=2.0, steps=2, seed=3, num=3, sampler="ddim")
    assert len(r["images"]) == 3 and r["images"][0].size == (32, 32) and r["seconds"] > 0 and r["steps"] == 2
    again = explore.generate_samples(pipe, class_id=1, cfg_scale=2.0, steps=2, seed=3, num=3, sampler="ddim")
    assert np.array_equal(np.asarray(r["images"][2]), np.asarray(again["images"][2]))  # same seed, same samples
    with pytest.raises(ValueError, match="pick a class"):
        explore.generate_samples(pipe, steps=2)
    with pytest.raises(ValueError, match="number of samples"):
        explore.generate_samples(pipe, class_id=0, num=0)
    t2i = DiT(DiTConfig.from_preset("dit-tiny", num_tokens=2, token_dim=8, condition="text", text_dim=384))
    pipe = Pipeline(t2i, tok, GenerationConfig(tokenizer=".", **stats), text_encoder=minilm)
    e = Explorer([tiny_checkpoints["textok-n2"]], dit=pipe, encoders={("minilm", "cpu"): minilm}, lpips=lpips_once)
    r = e.generate(prompt="", cfg_scale=1.0, steps=2, num=2, sampler="ddim")  # an empty prompt is a prompt
    assert len(r["images"]) == 2


def test_explore_imports_without_gradio():
    code = "import sys, textok.explore, textok.app, textok.cli.app; assert 'gradio' not in sys.modules, 'gradio imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------------------------------------
# scenes
# ---------------------------------------------------------------------------------------------

def test_compose_scene_lists_objects_in_reading_order_and_names_bad_menus():
    from textok.data.scenes import parse_caption

    scene = explore.compose_scene([("small", "red", "ring", "center"), None, ("large", "blue", "square", "top left")],
                                  "grey")
    assert explore.scene_caption(scene) == "a large blue square at top left and a small red ring at center, on a grey background"
    assert scene == parse_caption(explore.scene_caption(scene))  # the data's own scene dict
    with pytest.raises(ValueError, match="objects 1 and 3 are both at center: one object per cell"):
        explore.compose_scene([("small", "red", "ring", "center"), None, ("large", "blue", "square", "center")], "grey")
    with pytest.raises(ValueError, match="no object"):
        explore.compose_scene([None, None, None], "grey")
    with pytest.raises(ValueError, match="unknown colour 'pink'"):
        explore.compose_scene([("small", "pink", "ring", "center")], "grey")
    assert explore.scene_caption({"background": "navy", "objects": []}) == "no object, on a navy background"


def test_the_example_scenes_render_and_read_back_exactly():
    """The page's examples are captions in the training grammar; their renders read back as the caption."""
    from textok.data.scenes import HELDOUT_PAIRS, parse_caption, render_scene

    for name, caption in explore.SCENE_EXAMPLES.items():
        scene = parse_caption(caption)
        assert explore.scene_caption(scene) == caption, name  # reading order, as the data's captions
        a = explore.scene_adherence(render_scene(scene, 32), scene)
        assert a["exact"] and a["reads_as"] == caption, (name, a)
    last = parse_caption(list(explore.SCENE_EXAMPLES.values())[-1])
    assert any((o["colour"], o["shape"]) in HELDOUT_PAIRS for o in last["objects"])


def test_scene_explorer_reconstructs_edits_and_judges_each_image(scene_explorer):
    from textok.data.scenes import parse_caption, render_scene, swap_scene
    from textok.metrics.scenes import FACTORS

    caption = explore.SCENE_EXAMPLES["two objects"]
    r = scene_explorer.reconstruct(caption)
    scene = parse_caption(caption)
    assert np.array_equal(np.asarray(r["images"]["original"]), np.asarray(render_scene(scene, 32)))  # no resize
    assert set(r["adherence"]) == {"original", "baseline", "TexTok"} and r["adherence"]["original"]["exact"]
    assert all(set(FACTORS) <= set(a) and a["reads_as"].endswith("background") for a in r["adherence"].values())
    edited = explore.scene_caption(swap_scene(scene, "colour", 0)[0])
    e = scene_explorer.edit(caption, edited)
    assert e["model"] == "TexTok" and e["edited_scene"] == parse_caption(edited)
    assert np.array_equal(np.asarray(e["images"]["target"]), np.asarray(render_scene(e["edited_scene"], 32)))
    assert e["adherence"]["target"]["exact"] and e["max_difference"] > 0  # the caption reaches the decoder
    same = scene_explorer.edit(caption, caption)
    assert same["max_difference"] == 0
    with pytest.raises(ValueError, match="unknown shape 'blob'"):
        scene_explorer.reconstruct("a large red blob at top left, on a grey background")


def test_scene_explorer_takes_one_pair_of_one_size(tiny_checkpoints, minilm, lpips_once):
    c, enc = tiny_checkpoints, {("minilm", "cpu"): minilm}
    with pytest.raises(ValueError, match=r"one N for the scenes tab, got N = \[2, 4\]"):
        explore.SceneExplorer([c["textok-n2"], c["textok-n4"]], encoders=enc, lpips=lpips_once)
    with pytest.raises(ValueError, match="--scenes: no checkpoint"):
        explore.SceneExplorer([])
    only_baseline = explore.SceneExplorer([c["baseline-n2"]], encoders=enc, lpips=lpips_once)
    e = only_baseline.edit(explore.SCENE_EXAMPLES["one object"], explore.SCENE_EXAMPLES["two objects"])
    assert e["model"] == "baseline" and not e["text_in_decoder"] and e["max_difference"] == 0
    with pytest.raises(ValueError, match="start the app with --scenes-dit"):
        only_baseline.generate(explore.SCENE_EXAMPLES["one object"])


def test_scene_explorer_generates_from_the_caption_with_a_dit_per_arm(tiny_checkpoints, minilm, lpips_once):
    from textok import DiT, DiTConfig
    from textok.generation import GenerationConfig, Pipeline

    from .conftest import tiny_tokenizer

    stats = dict(latent_mean=[0.0] * 8, latent_std=[1.0] * 8)
    pipes = [Pipeline(DiT(DiTConfig.from_preset("dit-tiny", num_tokens=2, token_dim=8, condition="text", text_dim=384)),
                      tiny_tokenizer(2, text_in), GenerationConfig(tokenizer=".", **stats), text_encoder=minilm)
             for text_in in ("both", "none")]
    c, enc = tiny_checkpoints, {("minilm", "cpu"): minilm}
    s = explore.SceneExplorer([c["textok-n2"], c["baseline-n2"]], pipes, encoders=enc, lpips=lpips_once)
    assert set(s.dits) == {"TexTok", "baseline"} and "text-to-image DiT for TexTok and baseline" in s.describe()
    r = s.generate(explore.SCENE_EXAMPLES["one object"], seed=1, num=2, steps=2, sampler="ddim")
    for label in ("TexTok", "baseline"):
        assert len(r[label]["images"]) == len(r[label]["adherence"]) == 2 and r[label]["summary"]["num_images"] == 2
        assert r[label]["images"][0].size == (32, 32)
    with pytest.raises(ValueError, match="two DiTs decode with a TexTok tokenizer"):
        explore.SceneExplorer([c["textok-n2"]], [pipes[0], pipes[0]], encoders=enc)
    klass = Pipeline(DiT(DiTConfig.from_preset("dit-tiny", num_tokens=2, token_dim=8, num_classes=2)), tiny_tokenizer(2),
                     GenerationConfig(tokenizer=".", classes=["a", "b"], **stats), text_encoder=minilm)
    with pytest.raises(ValueError, match="a class-conditional DiT; the scenes tab generates from captions"):
        explore.SceneExplorer([c["textok-n2"]], [klass], encoders=enc)
