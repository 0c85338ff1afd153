"""studies/scenes/ship.py: the trained scenes pair (tiny random stand-ins) shipped as package data with its model
card, found by textok.pretrained.find_pair beside the emoji pair; a text-to-image DiT shipped beside its tokenizer
loads as a generation pipeline that decodes through the shipped tokenizer."""

import json

import pytest
import torch

from textok import CaptionedTokenizer, DiT, DiTConfig, TexTok, TexTokConfig
from textok import pretrained
from textok.generation import GenerationConfig, Pipeline


def tiny_tokenizer(text_in: str, seed: int = 0) -> TexTok:
    torch.manual_seed(seed)
    return TexTok(TexTokConfig(image_size=32, patch_size=8, num_tokens=1, token_dim=8, width=32, depth=1, heads=2,
                               max_text_tokens=40, text_in=text_in))


def tiny_t2i_folder(folder, tokenizer: TexTok, seed: int = 1):
    """A ``textok train-dit``-like ``<run>/model`` (its own tokenizer/ copy) + ``train_summary.json``."""
    torch.manual_seed(seed)
    dit = DiT(DiTConfig.from_preset("dit-tiny", num_tokens=1, token_dim=8, condition="text", text_dim=384))
    config = GenerationConfig(tokenizer="tokenizer", latent_mean=[0.0] * 8, latent_std=[1.0] * 8)
    Pipeline(dit, tokenizer, config).save_pretrained(folder / "model")
    (folder / "train_summary.json").write_text(json.dumps({"step": 30}))
    return folder / "model"


def record(run: str, arm: str, budgets: dict[int, float]) -> dict:
    overrides = ["model.num_tokens=1", "seed=0"] + (["model.text_in=none", "data.caption_dropout=0.0"]
                                                    if arm == "baseline" else [])
    return {"run": run, "arm": arm, "config": "scenes32_fast.yaml", "overrides": overrides, "budgets": {
        str(b): {"steps": b, "train_seconds_total": 12.5, "cpu": "Test CPU", "threads": 2, "commit": "abc123",
                 "date": "2026-12-06", "final_loss": 0.01,
                 "data": {"root": "data/scenes25k", "recipe": {"dataset": "scenes", "count": 25000, "size": 32,
                                                              "seed": 0, "eval_count": 1000, "version": 1}},
                 "effective_config": {"optim": {"batch_size": 32}},
                 "val": {"num_images": 300, "psnr": psnr, "ssim": 0.8, "lpips": 0.1, "rfid": None},
                 "val_compositional": {"num_images": 300, "psnr": psnr - 0.5, "ssim": 0.79, "lpips": 0.11,
                                       "rfid": 9.5},
                 "train_probe": {"num_images": 1000, "psnr": psnr + 0.1, "ssim": 0.81}}
        for b, psnr in budgets.items()}}


@pytest.fixture
def study(tmp_path):
    """Stage models at 20 and 40 steps of both runs (the baseline's 40 unscored), their score records, and a
    package root that already ships an emoji pair."""
    work, results, root = tmp_path / "work", tmp_path / "results", tmp_path / "pretrained"
    results.mkdir()
    for run, arm, text_in in (("textok-n1-s0", "textok", "both"), ("baseline-n1-s0", "baseline", "none")):
        for steps in (20, 40):
            tiny_tokenizer(text_in, seed=steps).save_pretrained(work / "stages" / run / f"step_{steps:07d}")
        scored = {20: 25.0, 40: 27.0} if arm == "textok" else {20: 22.0}
        (results / f"{run}.json").write_text(json.dumps(record(run, arm, scored)))
    for arm, text_in in (("textok", "both"), ("baseline", "none")):  # the emoji pair stays shipped
        tiny_tokenizer(text_in).save_pretrained(root / f"emoji32-{arm}-n4")
    return work, results, root


def test_ship_the_newest_common_budget_with_a_model_card(study, scenes_study, capsys):
    ship = scenes_study("ship")
    work, results, root = study
    assert ship.main(["--work", str(work), "--results", str(results), "--out-root", str(root),
                      "--study-steps", "80"]) == 0
    printed = capsys.readouterr().out
    assert "textok-n1-s0 @ 20 ->" in printed and "baseline-n1-s0 @ 20 ->" in printed  # 40: the baseline is unscored
    for arm, psnr in (("textok", 25.0), ("baseline", 22.0)):
        out = root / f"scenes32-{arm}-n1"
        assert sorted(p.name for p in out.iterdir()) == ["README.md", "SOURCE.json", "config.json", "model.safetensors"]
        source = json.loads((out / "SOURCE.json").read_text())
        assert source["steps"] == 20 and source["arm"] == arm and source["dtype"] == "float16"
        assert source["scores"]["val"]["psnr"] == psnr and source["recipe"] == "scenes32_fast.yaml"
        assert source["float16_vs_float32"]["psnr_db"] > 40
        card = (out / "README.md").read_text()
        assert "textok data fetch scenes --root data/scenes25k --count 25000 --size 32 --seed 0" in card
        assert "`configs/scenes32_fast.yaml` with `model.num_tokens=1 seed=0" in card
        assert f"python -m studies.scenes.run --runs {arm}-n1-s0 --steps 80 --config configs/scenes32_fast.yaml" in card
        assert f"| val (300 images) | {psnr:.2f} | 0.8000 | 0.1000 | – |" in card
        assert "| val_compositional (300 images) |" in card and "| 9.50 |" in card
        assert "20 x batch 32 (12.5 s of training on Test CPU" in card
        assert f"{source['weights_bytes'] / 1e6:.2f} MB of float16 weights" in card
        loaded = CaptionedTokenizer.from_pretrained(out)  # as a user loads it
        assert loaded.config.num_tokens == 1 and next(loaded.model.parameters()).dtype == torch.float32
        stage = TexTok.from_pretrained(work / "stages" / f"{arm}-n1-s0" / "step_0000020")
        for (k, a), b in zip(stage.state_dict().items(), loaded.model.state_dict().values()):
            assert torch.equal(a.half().float(), b), k
    # the scenes pair is the default, the emoji pair is still found by name
    assert pretrained.pair_names(root) == ["emoji32", "scenes32"]
    assert pretrained.find_pair(root) == {"num_tokens": 1, "textok": root / "scenes32-textok-n1",
                                          "baseline": root / "scenes32-baseline-n1"}
    assert pretrained.find_pair(root, name="emoji32")["textok"] == root / "emoji32-textok-n4"
    assert pretrained.find_pair(root, name="nothing") is None
    assert pretrained.dit_for(root / "scenes32-textok-n1") is None


def test_ship_a_dit_beside_its_tokenizer(study, scenes_study, tmp_path, minilm):
    ship = scenes_study("ship")
    work, results, root = study
    stage = work / "stages" / "textok-n1-s0" / "step_0000020"
    generation = tiny_t2i_folder(tmp_path / "t2i", TexTok.from_pretrained(stage))
    assert ship.main(["--work", str(work), "--results", str(results), "--out-root", str(root), "--steps", "20",
                      "--dit", f"textok={generation}"]) == 0
    dit_dir = root / "scenes32-textok-n1-dit"
    assert pretrained.dit_for(root / "scenes32-textok-n1") == dit_dir
    assert pretrained.dit_for(root / "scenes32-baseline-n1") is None
    assert sorted(p.name for p in dit_dir.iterdir()) == ["README.md", "SOURCE.json", "dit", "generation.json"]
    assert json.loads((dit_dir / "generation.json").read_text())["tokenizer"] == "../scenes32-textok-n1"
    source = json.loads((dit_dir / "SOURCE.json").read_text())
    assert source["steps"] == 30 and source["tokenizer"] == "scenes32-textok-n1" and source["dtype"] == "float16"
    assert "Pipeline.from_pretrained" in (dit_dir / "README.md").read_text()
    # a DiT folder is not a tokenizer: the pair is unchanged
    assert pretrained.shipped_checkpoints(root, "scenes32")[0] == [root / "scenes32-textok-n1"]
    # it samples as the generation folder it came from, decoding through the shipped tokenizer
    shipped = Pipeline.from_pretrained(dit_dir, text_encoder=minilm)
    original = Pipeline.from_pretrained(generation, text_encoder=minilm)
    prompt = ["a large red circle at center, on a grey background"]
    a, ta = shipped(prompts=prompt, steps=3, sampler="ddim", seed=2, return_tokens=True)
    b, tb = original(prompts=prompt, steps=3, sampler="ddim", seed=2, return_tokens=True)
    assert a.shape == (1, 3, 32, 32)
    torch.testing.assert_close(ta, tb, atol=5e-3, rtol=5e-2)  # float16 DiT weights
    # and `textok sample` takes the shipped folder as it is
    from textok.cli import main

    png = tmp_path / "sampled.png"
    assert main(["sample", "--checkpoint", str(dit_dir), "--prompt", prompt[0], "--num", "2", "--steps", "2",
                 "--out", str(png)]) == 0
    assert png.stat().st_size > 0


def test_ship_refuses_a_dit_of_another_tokenizer(study, scenes_study, tmp_path):
    ship = scenes_study("ship")
    work, results, root = study
    other = tiny_t2i_folder(tmp_path / "t2i", tiny_tokenizer("both", seed=99))
    with pytest.raises(ValueError, match="weights differ"):
        ship.main(["--work", str(work), "--results", str(results), "--out-root", str(root), "--steps", "20",
                   "--dit", f"textok={other}"])
    assert not (root / "scenes32-textok-n1-dit").exists()
    with pytest.raises(SystemExit, match="expected textok=FOLDER"):
        ship.main(["--work", str(work), "--results", str(results), "--dit", "dit=x"])
    with pytest.raises(SystemExit, match="baseline-n1-s0: no scores of budget 40"):
        ship.main(["--work", str(work), "--results", str(results), "--out-root", str(tmp_path / "new"),
                   "--steps", "40"])
    assert not (tmp_path / "new").exists()  # every run checked before anything is written
    with pytest.raises(SystemExit, match="no budget with a stage model and scores"):
        ship.main(["--work", str(tmp_path / "empty"), "--results", str(results), "--out-root", str(root)])


def test_t2i_scores_read_the_dit_score_file(tmp_path):
    """A DiT of studies/scenes/t2i.py (<work>/<name>/dit_<arm>_d<seed>/model) gets its score file's rows on its card;
    another folder gets none."""
    from studies.scenes import ship

    entry = {"split": "val", "sampler": "ddim", "steps": 50, "cfg_scale": 3.0, "gfid": {"gfid": 74.9, "num": 300},
             "adherence": {"images": {f: 0.5 for f in ("exact", "colour", "shape", "size", "background")}}}
    rec = {"num_tokens": 1, "scores": {"val/ddim50/cfg3": entry},
           "dit": {"config": "dit_t2i_scenes32.yaml", "seconds": 650.0, "device": "AMD EPYC", "threads": 2}}
    (tmp_path / "n1-textok-d1.json").write_text(json.dumps(rec))
    got = ship.t2i_scores(tmp_path / "work" / "n1" / "dit_textok_d1" / "model", "textok", tmp_path)
    assert got["dit_seed"] == 1 and got["train_seconds"] == 650.0
    assert got["scores"]["rows"] == [{"split": "val", "sampler": "ddim", "steps": 50, "cfg_scale": 3.0,
                                      "images": entry["adherence"]["images"], "gfid": 74.9}]
    assert "--dit-seeds 1 --gfid-num 300" in got["scores"]["command"]
    assert ship.t2i_scores(tmp_path / "elsewhere" / "model", "textok", tmp_path) == {}
    assert ship.t2i_scores(tmp_path / "work" / "n1" / "dit_textok_d0" / "model", "textok", tmp_path) == {"dit_seed": 0}
    card = ship.dit_readme({"name": "x-dit", "tokenizer": "x", "dit_config": {"width": 8, "depth": 1},
                            "diffusion": {"sampler": "ddim", "steps": 50, "cfg_scale": 3.0}, "weights_bytes": 10,
                            "parameters": 5, "steps": 3000, **got})
    assert "| val | ddim 50 | 3 | 50.0% | 50.0% | 50.0% | 50.0% | 50.0% | 74.9 |" in card
