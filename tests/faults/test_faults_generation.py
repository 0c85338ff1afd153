"""Generation: resumed work refuses other settings; bad numbers are refused, not replaced."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from textok import DiT, DiTConfig, TexTok, TexTokConfig
from textok.generation import GenerationConfig, Pipeline, sample_fid


@pytest.fixture
def pipe():
    """An untrained class-conditional DiT + a no-text tokenizer: fast, and enough to sample."""
    torch.manual_seed(0)
    tok = TexTok(TexTokConfig.from_preset("textok-mini-32", width=32, depth=1, heads=4, num_tokens=8,
                                          max_text_tokens=16, text_in="none"))
    dit = DiT(DiTConfig.from_preset("dit-tiny", num_tokens=8, token_dim=8, num_classes=2))
    return Pipeline(dit, tok, GenerationConfig(tokenizer=".", classes=["a", "b"], latent_mean=[0.0] * 8,
                                               latent_std=[1.0] * 8))


class _Stop(Exception):
    pass


def _killed_after_first_batch(pipe, monkeypatch, **kwargs):
    """sample_fid that dies after writing its first batch (as if killed)."""
    calls = {"n": 0}
    real = Pipeline.__call__

    def once(self, *a, **k):
        calls["n"] += 1
        if calls["n"] > 1:
            raise _Stop
        return real(self, *a, **k)

    with monkeypatch.context() as m:
        m.setattr(Pipeline, "__call__", once)
        with pytest.raises(_Stop):
            sample_fid(pipe, progress=False, **kwargs)


@pytest.mark.parametrize("change", [{"seed": 1}, {"cfg_scale": 2.0}, {"batch_size": 2}, {"steps": 3}])
def test_sample_fid_refuses_parts_made_with_other_settings(pipe, tmp_path, monkeypatch, change):
    out = tmp_path / "s.npz"
    first = dict(num=8, out=out, batch_size=4, steps=2, sampler="ddim", seed=0, cfg_scale=1.5)
    _killed_after_first_batch(pipe, monkeypatch, **first)
    with pytest.raises(ValueError, match=f"other settings.*{next(iter(change))}"):
        sample_fid(pipe, progress=False, **{**first, **change})
    assert not out.exists()
    # the same settings finish the job, with every sample in it
    sample_fid(pipe, progress=False, **first)
    with np.load(out) as z:
        assert z["arr_0"].shape[0] == 8 and z["arr_1"].shape == (8,)
    assert not out.with_name("s.npz.parts").exists()


def test_sample_fid_refuses_parts_of_unknown_settings(pipe, tmp_path):
    parts = tmp_path / "s.npz.parts"
    parts.mkdir()
    (parts / "batch-000000.npz").write_bytes(b"old")
    with pytest.raises(ValueError, match="unknown settings"):
        sample_fid(pipe, num=4, out=tmp_path / "s.npz", batch_size=4, steps=2, sampler="ddim", progress=False)


@pytest.mark.parametrize("kwargs, match", [({"steps": 0}, "--steps"), ({"steps": -3}, "--steps"),
                                           ({"cfg_scale": float("nan")}, "--cfg"),
                                           ({"cfg_scale": float("inf")}, "--cfg")])
def test_sampling_settings_are_checked(pipe, kwargs, match):
    with pytest.raises(ValueError, match=match):
        pipe(labels=[0], sampler="ddim", **kwargs)


def _dit_task(tmp_path, data_extra=None):
    """A DiTTask over a tiny latent cache of 2 classes x 3 distinct captions."""
    import json

    from textok.latents import encode_dataset
    from textok.training.dit_task import DiTTask, build_dit_config

    from .conftest import write_image, write_jsonl

    data = tmp_path / "data"
    entries = []
    for i in range(6):
        write_image(data / f"{i}.png", size=(32, 32), seed=i)
        entries.append({"file": f"{i}.png", "caption": f"caption {i}", "label": i % 2, "class": f"kind{i % 2}"})
    write_jsonl(data / "captions.jsonl", entries)
    for name, content in (data_extra or {}).items():
        (data / name).write_text(json.dumps(content))
    tok = tmp_path / "tok"
    TexTok(TexTokConfig.from_preset("textok-mini-32", width=32, depth=1, heads=4, num_tokens=8, max_text_tokens=16,
                                    text_in="none")).save_pretrained(tok)
    cache = encode_dataset(tok, data, tmp_path / "cache", progress=False)
    cfg = build_dit_config({"model": {"preset": "dit-tiny", "num_tokens": 8, "token_dim": 8, "num_classes": 2},
                            "data": {"cache": str(cache)}, "logging": {"num_preview": 0, "tensorboard": False}})
    return DiTTask(cfg)


def test_fallback_pool_keeps_every_caption_and_says_so(tmp_path, caplog):
    task = _dit_task(tmp_path)
    model = task.build_model()
    out = tmp_path / "out"
    out.mkdir()
    pipe = task._pipeline(model)  # a preview's pipeline: built, nothing written
    assert pipe.pool == {0: ["caption 0", "caption 2", "caption 4"], 1: ["caption 1", "caption 3", "caption 5"]}
    assert not list(out.iterdir()) and not list(tmp_path.rglob("caption_pool.json"))
    with caplog.at_level("WARNING"):
        task.save_model(model, out)  # the generation folder gets the pool, and that is said
    assert "TRAINING captions" in caplog.text
    saved = json.loads((out / "caption_pool.json").read_text())
    assert sorted(saved.values()) == sorted(pipe.pool.values())
    assert Pipeline.from_pretrained(out).pool == pipe.pool


def test_training_pool_as_heldout_is_said(tmp_path, caplog):
    task = _dit_task(tmp_path, {"class_captions.json": {"kind0": ["a kind0"], "kind1": ["a kind1"]}})
    with caplog.at_level("WARNING"):
        config = task.generation_config()
    assert config.caption_pool.endswith("class_captions.json")
    assert "no class_captions_heldout.json" in caplog.text and "TRAINING captions" in caplog.text


LONG = " ".join(f"word{i}" for i in range(60))  # ~120 MiniLM tokens, far beyond max_text_tokens=16


def test_long_captions_are_cut_at_max_text_tokens_everywhere(minilm, tmp_path):
    """Training cuts captions at max_text_tokens; reconstruct, eval and sample must do the same."""
    from textok import CaptionedTokenizer
    from textok.conditioning import TextConditioner
    from textok.inference import reconstruct

    from .conftest import write_image

    tok = TexTok(TexTokConfig.from_preset("textok-mini-32", width=32, depth=1, heads=4, num_tokens=8,
                                          max_text_tokens=16)).eval()
    trained = TextConditioner(minilm, 16, None, use_cache=False)  # as training embeds
    expected = trained.embed([LONG])
    got = CaptionedTokenizer(tok, minilm).condition([LONG], 1)  # a full-length encoder is cut to the model's budget
    assert got.embeddings.shape[1] == 16
    assert torch.equal(got.embeddings, expected.embeddings) and torch.equal(got.mask, expected.mask)
    image = write_image(tmp_path / "a.png", size=(32, 32))
    assert reconstruct([image], tok, captions=[LONG], encoder=minilm).shape == (1, 3, 32, 32)
    # generation: the detokenizer's captions are cut the same way
    dit = DiT(DiTConfig.from_preset("dit-tiny", num_tokens=8, token_dim=8, num_classes=1))
    pipe = Pipeline(dit, tok, GenerationConfig(tokenizer=".", classes=["x"], latent_mean=[0.0] * 8,
                                               latent_std=[1.0] * 8), {0: [LONG]}, text_encoder=minilm)
    assert pipe(labels=[0], steps=1, sampler="ddim").shape == (1, 3, 32, 32)
