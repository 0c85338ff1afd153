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
    assert props["guide"]["value"].startswith("## TexTok: what the caption does\n" + text)
    assert props["example"]["label"] == "…or an example from val_unseen (new emoji)"
    # the Tokens tab names the selector the page has, and says so when there is none
    assert props["tokens-note"]["value"] == tokens_markdown([2, 4]) and "**Tokens N**" in tokens_markdown([2, 4])
    assert props["n-tokens"]["label"].startswith("Tokens N") and props["n-tokens"]["visible"]
    assert "Tokens N" not in tokens_markdown([4]) and "no N to pick" in tokens_markdown([4])

