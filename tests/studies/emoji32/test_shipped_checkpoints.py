"""Half-precision checkpoint folders (the shipped ones) and studies/emoji32/ship_checkpoints.py."""

import json

import pytest
import torch
from safetensors import safe_open

from textok import TexTok
from textok.models import TexTokConfig
from textok.text import TextEmbedding


def tiny_model(text_in: str = "both", num_tokens: int = 4, seed: int = 0) -> TexTok:
    torch.manual_seed(seed)
    return TexTok(TexTokConfig(image_size=32, patch_size=4, num_tokens=num_tokens, token_dim=8, width=32, depth=1,
                               heads=2, max_text_tokens=32, text_in=text_in)).eval()


def _inputs(model, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(3, 3, 32, 32, generator=g) * 2 - 1
    text = None
    if model.config.text_in != "none":
        text = TextEmbedding(torch.randn(3, 5, model.config.text_dim, generator=g), torch.ones(3, 5, dtype=torch.bool))
    return x, text


def test_float16_folder_loads_as_float32_and_reconstructs_close(tmp_path):
    model = tiny_model()
    with torch.no_grad():
        model.half().save_pretrained(tmp_path / "fp16")
    model = model.float()
    with safe_open(str(tmp_path / "fp16" / "model.safetensors"), "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.float16}
    loaded = TexTok.from_pretrained(tmp_path / "fp16")
    assert {p.dtype for p in loaded.parameters()} == {torch.float32}
    for (k, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a.half().float(), b), k  # exactly the float16 rounding of the weights
    x, text = _inputs(model)
    with torch.no_grad():
        ref = model.decode(model.encode(x, text), text)
        got = loaded.decode(loaded.encode(x, text), text)
    assert (ref - got).abs().max() < 2e-2
    assert 10 * torch.log10(4 / (ref - got).pow(2).mean()) > 40  # dB, on the [-1, 1] range


def test_ship_checkpoint_writes_the_folder(tmp_path, ship_module):
    ship = ship_module
    stage = tmp_path / "work" / "runs" / "textok-n4-s0" / "stages" / "step_0000500"
    model = tiny_model()
    model.save_pretrained(stage)
    results = tmp_path / "results"
    (results / "textok-n4-s0").mkdir(parents=True)
    record = {"run": "textok-n4-s0", "steps": 500, "config": "emoji32_textok_p8.yaml", "records": [
        {"split": "val", "num_images": 692, "psnr": 20.5, "ssim": 0.7, "lpips": 0.2, "rfid": 30.0},
        {"split": "val_unseen", "num_images": 652, "psnr": 19.5, "ssim": 0.6, "lpips": 0.25, "rfid": 35.0}]}
    (results / "textok-n4-s0" / "step_0000500.json").write_text(json.dumps(record))

    assert ship.main([str(stage), "--out-root", str(tmp_path / "pretrained"), "--results", str(results)]) == 0
    out = tmp_path / "pretrained" / "emoji32-textok-n4"
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "SOURCE.json", "config.json", "model.safetensors"]
    source = json.loads((out / "SOURCE.json").read_text())
    assert source["run"] == "textok-n4-s0" and source["steps"] == 500 and source["arm"] == "textok"
    assert source["study_scores"]["val"]["psnr"] == 20.5 and source["study_scores"]["val_unseen"]["num_images"] == 652
    assert source["dtype"] == "float16" and source["float16_vs_float32"]["psnr_db"] > 40
    assert source["date"]
    assert source["recipe"] == "emoji32_textok_p8.yaml"  # the demo's short run trains this recipe
    readme = (out / "README.md").read_text()
    assert "`configs/emoji32_textok_p8.yaml`" in readme
    assert "CC-BY 4.0" in readme and "Apache-2.0" in readme and "MIT" in readme
    # about half the float32 file
    assert (out / "model.safetensors").stat().st_size < 0.6 * (stage / "model.safetensors").stat().st_size
    loaded = TexTok.from_pretrained(out)
    assert loaded.config == model.config and next(loaded.parameters()).dtype == torch.float32

    # a baseline without a score file: named by its arm, no scores, still shipped; shipping again replaces
    base_stage = tmp_path / "b" / "runs" / "baseline-n4-s0" / "stages" / "step_0000500"
    tiny_model("none").save_pretrained(base_stage)
    for _ in range(2):
        b = ship.ship_checkpoint(base_stage, tmp_path / "pretrained", results)
    assert b.name == "emoji32-baseline-n4"
    assert json.loads((b / "SOURCE.json").read_text())["study_scores"] is None
    assert json.loads((b / "SOURCE.json").read_text())["recipe"] == "emoji32_textok.yaml"  # no record: the first recipe

    from textok.pretrained import shipped_checkpoints

    assert shipped_checkpoints(tmp_path / "pretrained") == ([out], [b])


def test_ship_checkpoint_refuses_a_folder_that_is_not_a_model(tmp_path, ship_module):
    ship = ship_module
    with pytest.raises(FileNotFoundError):
        ship.ship_checkpoint(tmp_path / "nothing", tmp_path / "pretrained")


def test_convergence_status_reaches_source_and_readme(tmp_path, ship_module):
    """SOURCE.json says whether the run had converged by the study's rule at the shipped budget; the
    folder's README (which the demo's results point to) calls an unconverged pair provisional."""
    ship = ship_module
    results = tmp_path / "results" / "textok-n4-s0"
    results.mkdir(parents=True)
    for steps, psnr in ((1000, 15.0), (2000, 16.5), (4000, 16.6)):
        (results / f"step_{steps:07d}.json").write_text(json.dumps({"run": "textok-n4-s0", "steps": steps, "records": [
            {"split": "val", "num_images": 692, "psnr": psnr, "ssim": 0.5, "lpips": 0.3, "rfid": 100.0}]}))
    conv = ship.convergence(results.parent, "textok-n4-s0", 2000)
    assert conv == {"converged": False, "val_psnr_change_from_half_budget": pytest.approx(1.5)}
    assert ship.convergence(results.parent, "textok-n4-s0", 4000)["converged"] is True
    assert ship.convergence(results.parent, "textok-n4-s0", 8000) is None  # no score file for that budget
    assert "provisional, not converged" in ship.status_line(conv) and "+1.50 dB" in ship.status_line(conv)


def test_the_shipped_val_inception_features_are_what_the_demo_checks():
    """The rFID reference shipped beside the pair: 692 x 2048 float16 features of the emoji `val`
    originals at 32 px, from the pinned Inception file; the pixel fingerprint is there for the
    demo to compare (``textok.demo.shipped_reference``)."""
    import numpy as np

    from textok.assets import ASSETS
    from textok.metrics import load_stats
    from textok.pretrained import PRETRAINED_DIR

    path = PRETRAINED_DIR / "emoji32-val-inception.npz"
    if not path.is_file():
        pytest.skip("no shipped reference features in this build")
    with np.load(path) as raw:
        assert set(raw.files) == {"features", "info"} and raw["features"].dtype == np.float16
    stats = load_stats(path)
    assert stats.features.shape == (692, 2048) and stats.num == 692 and (stats.features >= 0).all()
    info = stats.info
    assert info["split"] == "val" and info["image_size"] == 32
    assert info["inception_sha256"] == ASSETS["inception-fid"].sha256
    assert len(info["pixels_sha256"]) == 64
    assert path.stat().st_size < 3 * 1024 * 1024
