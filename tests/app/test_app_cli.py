"""`textok app` on the command line and the Gradio layer's handlers (no browser)."""

import numpy as np
import pytest
from PIL import Image

from textok import explore, pretrained
from textok.cli import main


def test_app_without_checkpoints_asks_for_one(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(pretrained, "PRETRAINED_DIR", tmp_path / "nothing-here")
    assert main(["app"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no checkpoint: give --checkpoint DIR" in err[0]


def test_app_opens_on_the_shipped_checkpoints(tmp_path, monkeypatch, tiny_checkpoints, capsys):
    import shutil

    pytest.importorskip("gradio")
    root = tmp_path / "pretrained"
    shutil.copytree(tiny_checkpoints["textok-n2"], root / "emoji32-textok-n2")
    shutil.copytree(tiny_checkpoints["baseline-n2"], root / "emoji32-baseline-n2")
    monkeypatch.setattr(pretrained, "PRETRAINED_DIR", root)
    seen = {}
    import textok.app

    monkeypatch.setattr(textok.app, "launch", lambda explorer, **kw: seen.update(explorer=explorer, **kw))
    assert main(["app", "--port", "0"]) == 0
    assert seen["host"] == "127.0.0.1" and seen["explorer"].token_counts == [2]
    assert explore.display_name(seen["explorer"].pair(2)["baseline"]) == "emoji32-baseline-n2"
    assert main(["app", "--checkpoint", str(tiny_checkpoints["textok-n4"]), "--max-upload-mb", "1"]) == 0
    assert seen["explorer"].token_counts == [4] and seen["max_bytes"] == 1024 * 1024


def test_app_without_gradio_says_how_to_install(monkeypatch, tiny_checkpoints, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "gradio", None)  # import gradio -> ImportError
    assert main(["app", "--checkpoint", str(tiny_checkpoints["textok-n2"])]) == 2
    assert "pip install -e '.[app]'" in capsys.readouterr().err


def test_page_handlers_report_bad_input_and_keep_working(explorer, tmp_path):
    pytest.importorskip("gradio")
    from textok.app import build_app

    demo = build_app(explorer, max_bytes=20_000, max_pixels=100_000)
    h = demo.textok_handlers
    good = tmp_path / "good.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(good)
    orig, base, tex, table, status = h["reconstruct"](str(good), None, "a caption", "2")
    assert status == "" and orig.size == base.size == tex.size == (32, 32)  # the exact output; the browser enlarges
    assert "| TexTok |" in table and "| baseline |" in table and "PSNR" in table
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    *outs, status = h["reconstruct"](str(bad), None, "a caption", "2")
    assert outs == [None] * 4 and "bad.png: " in status and "⚠" in status
    wide = tmp_path / "wide.png"
    Image.new("RGB", (1000, 1000)).save(wide)
    *_, status = h["reconstruct"](str(wide), None, "", "2")
    assert "megapixel limit" in status
    *_, status = h["reconstruct"](None, None, "", "2")
    assert "no image" in status
    *outs, status = h["reconstruct"](None, "dog", "", "4")  # a bundled example; no baseline at N=4
    assert status == "" and outs[1] is None and "no checkpoint at this N" in outs[3]
    rec, swapped, diff, table, status = h["swap"](str(good), None, "a dog", "a car", "2")
    assert status == "" and "Largest pixel change" in table
    gallery, table, status = h["sweep"](str(good), None, "")
    assert status == "" and len(gallery) == 4 and table.count("\n") == 3  # original + 2 at N=2 + 1 at N=4


def test_page_generate_tab_with_a_tiny_dit(tiny_checkpoints, minilm, lpips_once):
    pytest.importorskip("gradio")
    from textok import DiT, DiTConfig
    from textok.app import build_app
    from textok.explore import Explorer
    from textok.generation import GenerationConfig, Pipeline

    from .conftest import tiny_tokenizer

    stats = dict(latent_mean=[0.0] * 8, latent_std=[1.0] * 8)
    dit = DiT(DiTConfig.from_preset("dit-tiny", num_tokens=2, token_dim=8, num_classes=2))
    pipe = Pipeline(dit, tiny_tokenizer(2), GenerationConfig(tokenizer=".", classes=["cat", "dog"], **stats),
                    text_encoder=minilm)
    e = Explorer([tiny_checkpoints["textok-n2"]], dit=pipe, encoders={("minilm", "cpu"): minilm}, lpips=lpips_once)
    demo = build_app(e)
    h = demo.textok_handlers
    api = demo.get_api_info()["named_endpoints"]
    assert set(api) == {"/reconstruct", "/swap_caption", "/sweep_tokens", "/generate"}
    # a class-conditional DiT takes no prompt (a hidden state, not an API parameter)
    assert [p["parameter_name"] for p in api["/generate"]["parameters"]] == ["class_id", "guidance_scale", "steps",
                                                                            "seed", "num_samples"]
    gallery, took, status = h["generate"](None, 1, 1.5, 2, 7, 3)
    assert status == "" and len(gallery) == 3 and "3 samples in" in took and "guidance 1.5" in took
    *_, status = h["generate"](None, 5, 1.5, 2, 7, 3)  # no class 5: a message, not a crash
    assert "class labels must lie in [0, 2)" in status


def test_the_page_says_what_it_shows_and_names_what_it_mentions(explorer):
    pytest.importorskip("gradio")
    from textok.app import build_app, guide_markdown, tokens_markdown

    text = guide_markdown(explorer, explore.bundled_examples())
    for needle in ("32 px", "M parameters", "**PSNR** (dB, higher is better)", "**LPIPS** (lower is better",
                   "this one image", "from val_unseen (new emoji)"):
        assert needle in text, needle
    props = {c["props"].get("elem_id"): c["props"] for c in build_app(explorer).get_config_file()["components"]}
    assert props["title"]["value"] == "## TexTok: what the caption does" and props["guide"]["value"].startswith(text)
    assert props["example"]["label"] == "…or an example from val_unseen (new emoji)"
    # the Tokens tab names the selector the page has, and says so when there is none
    assert props["tokens-note"]["value"] == tokens_markdown([2, 4]) and "**Tokens N**" in tokens_markdown([2, 4])
    assert props["n-tokens"]["label"].startswith("Tokens N") and props["n-tokens"]["visible"]
    assert "Tokens N" not in tokens_markdown([4]) and "no N to pick" in tokens_markdown([4])



# ---- the Scenes tab (issue 45, 3) -----------------------------------------------------------------------------------

def _scenes_root(tmp_path, tiny_checkpoints, emoji=True):
    """A stand-in for pretrained/: the tiny pair as the scenes pair (and as the emoji pair)."""
    import shutil

    root = tmp_path / "pretrained"
    for arm in ("textok", "baseline"):
        shutil.copytree(tiny_checkpoints[f"{arm}-n2"], root / f"scenes32-{arm}-n2")
        if emoji:
            shutil.copytree(tiny_checkpoints[f"{arm}-n2"], root / f"emoji32-{arm}-n2")
    return root


def test_app_opens_on_the_shipped_scenes_pair_and_takes_other_models(tmp_path, monkeypatch, tiny_checkpoints, capsys):
    pytest.importorskip("gradio")
    import textok.app
    from textok.cli.app import shipped_models

    root = _scenes_root(tmp_path, tiny_checkpoints)
    monkeypatch.setattr(pretrained, "PRETRAINED_DIR", root)
    models = shipped_models()
    assert [p.name for p in models["scenes"]] == ["scenes32-textok-n2", "scenes32-baseline-n2"]
    assert [p.name for p in models["checkpoints"] + models["baselines"]] == ["emoji32-textok-n2", "emoji32-baseline-n2"]
    assert models["scenes_dits"] == []  # no DiT shipped: no Generate section
    from textok import DiT, DiTConfig
    from textok.generation import GenerationConfig, Pipeline

    from .conftest import tiny_tokenizer

    dit = DiT(DiTConfig.from_preset("dit-tiny", num_tokens=2, token_dim=8, condition="text", text_dim=384))
    Pipeline(dit, tiny_tokenizer(2), GenerationConfig(tokenizer=".", latent_mean=[0.0] * 8, latent_std=[1.0] * 8)
             ).save_pretrained(root / "scenes32-textok-n2-dit")
    assert [p.name for p in shipped_models()["scenes_dits"]] == ["scenes32-textok-n2-dit"]
    assert [p.name for p in shipped_models()["scenes"]] == ["scenes32-textok-n2", "scenes32-baseline-n2"]
    seen = {}
    monkeypatch.setattr(textok.app, "launch", lambda explorer, **kw: seen.update(explorer=explorer, **kw))
    assert main(["app", "--port", "0"]) == 0
    scenes = seen["scenes"]
    assert set(scenes.dits) == {"TexTok"}  # the shipped DiT: the Generate section appears
    assert scenes.size == 32 and set(scenes.models.pair().values()) == set(scenes.models.pair(2).values())
    assert explore.display_name(scenes.models.pair()["TexTok"]) == "scenes32-textok-n2"
    assert explore.display_name(seen["explorer"].pair()["TexTok"]) == "emoji32-textok-n2"  # not mixed with scenes
    assert "textok app: scenes 32px: TexTok N=2 (scenes32-textok-n2" in capsys.readouterr().out
    # a model option replaces every default: --scenes alone serves the Scenes tab only
    assert main(["app", "--scenes", str(tiny_checkpoints["textok-n2"])]) == 0
    assert seen["explorer"] is None and seen["scenes"].models.pair()["baseline"] is None
    assert main(["app", "--checkpoint", str(tiny_checkpoints["textok-n4"])]) == 0
    assert seen["scenes"] is None and seen["explorer"].token_counts == [4]
    assert main(["app", "--scenes-dit", str(tmp_path)]) == 2
    assert "--scenes-dit needs the scenes pair: give --scenes DIR" in capsys.readouterr().err


def test_scene_handlers_judge_each_image_and_report_bad_captions(scene_explorer):
    pytest.importorskip("gradio")
    from textok.app import build_app
    from textok.data.scenes import render_scene
    from textok.explore import SCENE_EXAMPLES, scene_caption

    demo = build_app(None, scenes=scene_explorer)
    h = demo.textok_handlers
    assert set(h) == {"scene", "scene_edit"}  # no DiT: no scene_generate
    assert set(demo.get_api_info()["named_endpoints"]) == {"/scene_reconstruct", "/scene_edit"}
    caption = SCENE_EXAMPLES["one object"]
    scene_img, base, tex, table, made_from, status = h["scene"](caption)
    assert status == "" and made_from == caption and scene_img.size == base.size == tex.size == (32, 32)
    assert table.splitlines()[0].startswith("| image | should show | exact | background | present | colour |")
    assert f"| scene (rendered) | the caption | {' | '.join(['✓'] * 8)} |  | {caption} |" in table
    assert "| baseline (no text) | the caption |" in table and "| TexTok | the caption |" in table
    edited = caption.replace("orange", "purple")
    own, swapped, target, table, status = h["scene_edit"](caption, edited)
    assert status == "" and np.array_equal(np.asarray(target), np.asarray(render_scene(
        explore.compose_scene([("large", "purple", "triangle", "middle right")], "black"), 32)))
    assert "| TexTok, edited caption | the edited scene |" in table and "Largest pixel change" in table
    *_, status = h["scene_edit"](caption, caption)
    assert "edit the menus or the text" in status and 'class="note"' in status
    # a caption outside the grammar, or not text: a message naming the field, never an internal error
    for args, needle in ((("a large pink circle at top left, on a grey background",), "Scene caption: caption"),
                         (("a red car",), "does not end with &#x27;, on a &lt;background&gt; background&#x27;"),
                         (("a dog \ud800",), "Scene caption: not valid UTF-8"), ((None,), "Scene caption: caption")):
        *outs, status = h["scene"](*args)
        assert needle in status and "internal error" not in status and outs[:4] == [None] * 4, status
    *_, status = h["scene_edit"]("two circles", caption)
    assert "Tokens made from: caption &#x27;two circles&#x27;" in status
    # the page opens on its first example already reconstructed: the images are in the page's config
    props = {c["props"].get("elem_id"): c["props"] for c in demo.get_config_file()["components"]}
    first = next(iter(SCENE_EXAMPLES.values()))
    assert props["scene-caption"]["value"] == props["scene-made-from"]["value"] == first
    assert all(props[f"scene-img-{k}"]["value"] for k in ("original", "baseline", "textok"))
    assert "| TexTok | the caption |" in props["scene-metrics"]["value"]
    assert props["scene-colour-1"]["value"] == "yellow" and props["scene-cell-2"]["value"] == "center"
    assert props["scene-on-3"]["value"] is True and props["scene-background"]["value"] == "navy"


def test_scene_menus_and_caption_agree():
    from textok.app import scene_from_menus, scene_menu_values
    from textok.data.scenes import parse_caption
    from textok.explore import SCENE_EXAMPLES, scene_caption

    for caption in SCENE_EXAMPLES.values():
        values = scene_menu_values(parse_caption(caption))
        filled = [v if v is not None else "small" for v in values]  # an off slot's menus keep any value
        assert scene_caption(scene_from_menus(*filled)) == caption
    values = scene_menu_values(parse_caption(SCENE_EXAMPLES["two objects"]))
    values[5 + 5] = values[5]  # object 2 moved to object 1's cell
    with pytest.raises(ValueError, match="objects 1 and 2 are both at top left"):
        scene_from_menus(*values)
    pytest.importorskip("gradio")
    from textok.app import build_app

    with pytest.raises(ValueError, match="no models for the page"):
        build_app(None)


def test_scene_generate_with_tiny_text_dits(scene_explorer, minilm):
    """The Generate section exists only with text-to-image DiTs; each sample is judged against the caption."""
    pytest.importorskip("gradio")
    from textok import DiT, DiTConfig
    from textok.app import build_app
    from textok.explore import SCENE_EXAMPLES
    from textok.generation import GenerationConfig, Pipeline

    from .conftest import tiny_tokenizer

    from textok.diffusion import DiffusionConfig

    stats = dict(latent_mean=[0.0] * 8, latent_std=[1.0] * 8, diffusion=DiffusionConfig(sampler="ddim", steps=2))
    for text_in in ("both", "none"):
        dit = DiT(DiTConfig.from_preset("dit-tiny", num_tokens=2, token_dim=8, condition="text", text_dim=384))
        scene_explorer._add_dit(Pipeline(dit, tiny_tokenizer(2, text_in), GenerationConfig(tokenizer=".", **stats),
                                         text_encoder=minilm), "cpu")
    try:
        demo = build_app(None, scenes=scene_explorer)
        api = demo.get_api_info()["named_endpoints"]
        assert [p["parameter_name"] for p in api["/scene_generate"]["parameters"]] == ["caption", "seed"]
        gallery, table, status = demo.textok_handlers["scene_generate"](SCENE_EXAMPLES["one object"], 3)
        assert status == "" and len(gallery) == 8 and gallery[0][1].startswith("baseline 1: exact ")
        assert table.splitlines()[2].startswith("| baseline | 4 | ") and table.splitlines()[3].startswith("| TexTok | 4 | ")
        *_, status = demo.textok_handlers["scene_generate"](SCENE_EXAMPLES["one object"], 10**30)
        assert "Seed: must be an integer in [0, 4,294,967,295]" in status
    finally:
        scene_explorer.dits.clear()  # the session's stand-in has no DiT
