"""``textok demo`` (scenes, the default): a shipped pair of tiny random stand-ins (and their DiTs) re-scored on new
scenes drawn in memory, the edits, the generation, the one table; and the real shipped pair loads and runs.
The emoji demo: tests/training/test_demo_shipped.py."""

import json

import pytest
import torch
from PIL import Image

from textok import DiT, DiTConfig, TexTok, TexTokConfig, pretrained
from textok.cli import main
from textok.config import to_dict
from textok.generation import GenerationConfig


def tiny_pair(root, dits: bool = True):
    """scenes32-{textok,baseline}-n1 (random, tiny) under ``root``, each with a 3-step text-to-image DiT folder
    beside it that names it (as studies/scenes/ship.py writes them)."""
    for arm, text_in in (("textok", "both"), ("baseline", "none")):
        torch.manual_seed(0)
        tok = TexTok(TexTokConfig(image_size=32, patch_size=8, num_tokens=1, token_dim=8, width=32, depth=1, heads=2,
                                  max_text_tokens=40, text_in=text_in))
        tok.save_pretrained(root / f"scenes32-{arm}-n1")
        if dits:
            dit = DiT(DiTConfig.from_preset("dit-tiny", num_tokens=1, token_dim=8, condition="text", text_dim=384))
            config = GenerationConfig(tokenizer=f"../scenes32-{arm}-n1", latent_mean=[0.0] * 8, latent_std=[1.0] * 8)
            config.diffusion.steps = 3
            folder = root / f"scenes32-{arm}-n1-dit"
            dit.save_pretrained(folder / "dit")
            (folder / "generation.json").write_text(json.dumps(to_dict(config)))
    return root


@pytest.mark.slow
def test_demo_scenes_on_a_tiny_pair(tmp_path, capsys):
    root = tiny_pair(tmp_path / "pretrained")
    out = tmp_path / "demo"
    prompt = "a small white cross at bottom left, on a navy background"
    assert main(["demo", "--out", str(out), "--pretrained", str(root), "--num", "6", "--rows", "2",
                 "--prompt", prompt]) == 0
    printed = capsys.readouterr().out
    assert "the shipped pair: scenes32-textok-n1 and scenes32-baseline-n1" in printed
    saved = json.loads((out / "results.json").read_text())
    assert saved["demo"] == "scenes" and saved["meta"]["seed"] == 45 and saved["meta"]["num"] == 6
    for kind in ("new scenes", "held-out colour-shape pairs"):
        for arm in ("baseline", "textok"):
            r = saved["scores"][kind][arm]
            assert 0 < r["psnr"] < 60 and 0 <= r["ssim"] <= 1 and 0 <= r["lpips"] <= 2 and r["num"] == 6
        # the detector reads the renders themselves right: its ceiling
        assert saved["adherence"][kind]["originals"]["images"]["exact"] == 1.0
    assert set(saved["edits"]) == {"colour", "position", "background"}
    assert all(0 <= saved["edits"][f][a] <= 1 for f in saved["edits"] for a in ("baseline", "textok"))
    generated = saved["generated"]
    assert generated["prompts"][-1] == prompt and generated["samples"] == 4
    assert generated["adherence"]["textok"]["num_images"] == 4 * len(generated["prompts"])
    for name, rows in (("reconstructions.png", 2), ("swaps.png", 2), ("generated.png", len(generated["prompts"]))):
        with Image.open(out / name) as im:
            assert im.height > rows * 64
    md = (out / "results.md").read_text()
    assert md in printed  # one table, printed as written
    assert "| measure | originals | baseline | TexTok |" in md
    assert "| reads as its caption: the whole scene, new scenes | 100.0% |" in md
    assert "| shows an edited position (same tokens, new scenes) | – |" in md
    assert f"| generated from {len(generated['prompts'])} captions x 4: the whole scene | – |" in md
    # the same seed draws the same scenes and gives the same numbers
    again = tmp_path / "again"
    assert main(["demo", "--out", str(again), "--pretrained", str(root), "--num", "6", "--rows", "2",
                 "--prompt", prompt]) == 0
    assert json.loads((again / "results.json").read_text())["table"] == saved["table"]


@pytest.mark.slow
def test_demo_scenes_without_dits_skips_generation(tmp_path, capsys):
    root = tiny_pair(tmp_path / "pretrained", dits=False)
    from textok.demo import demo

    report = demo(out=tmp_path / "demo", pretrained=root, num=3, rows=1, seed=7)
    assert report["generated"] == {} and not (tmp_path / "demo" / "generated.png").exists()
    assert (tmp_path / "demo" / "swaps.png").is_file()
    assert not any("generated from" in row[0] for row in report["table"])


def test_demo_refuses_bad_input_before_any_work(tmp_path, capsys):
    root = tiny_pair(tmp_path / "pretrained", dits=False)
    out = tmp_path / "demo"
    bad = [(["--prompt", "a huge red circle at center, on a grey background"], "unknown size 'huge'"),
           (["--num", "1"], "--num must be >= 2"), (["--rows", "0"], "--rows >= 1")]
    for extra, message in bad:
        assert main(["demo", "--out", str(out), "--pretrained", str(root), *extra]) == 2
        assert message in capsys.readouterr().err and not out.exists()
    with pytest.raises(SystemExit):  # argparse's choices
        main(["demo", "cats", "--out", str(out)])


@pytest.mark.slow
def test_the_shipped_scenes_pair_loads_and_runs(tmp_path):
    """The real shipped pair (package data): found by default, loads with CaptionedTokenizer.from_pretrained, and
    the demo runs on a few scenes."""
    pair = pretrained.find_pair()
    if pair is None or not pair["textok"].name.startswith("scenes32-"):
        pytest.skip("no shipped scenes pair in this build")
    from textok import CaptionedTokenizer
    from textok.demo import demo

    tok = CaptionedTokenizer.from_pretrained(pair["textok"])
    assert tok.config.image_size == 32 and tok.config.text_in != "none"
    assert json.loads((pair["textok"] / "SOURCE.json").read_text())["dtype"] == "float16"
    report = demo(out=tmp_path / "demo", num=4, rows=2, progress=False)
    for arm in ("baseline", "textok"):
        assert 5 < report["scores"]["new scenes"][arm]["psnr"] < 60
    assert (tmp_path / "demo" / "reconstructions.png").stat().st_size > 1000
