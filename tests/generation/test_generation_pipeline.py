import dataclasses
import json

import numpy as np
import pytest
import torch
from PIL import Image

from textok import CaptionedTokenizer, DiT, DiTConfig, TexTok, TexTokConfig
from textok.cli import main
from textok.generation import GenerationConfig, Pipeline, SampleSettings, fid_labels, sample, sample_fid
from textok.latents import LatentCache, encode_dataset
from textok.training.dit_task import DiTTask, build_dit_config, train_dit


def dit_config(cache, steps, **extra):
    data = {
        "model": {"preset": "dit-tiny", "num_tokens": 8, "token_dim": 8, "num_classes": 3, "class_dropout": 0.0},
        "data": {"cache": str(cache), "max_items": 4},
        "optim": {"batch_size": 4, "lr": 2e-3},
        "schedule": {"max_steps": steps},
        "ema": {"decay": 0.9},
        "checkpoint": {"every": 1000},
        "logging": {"num_preview": 0, "progress": False, "tensorboard": False},
        "mixed_precision": "no",
    }
    return build_dit_config(data, [f"{k}={v}" for k, v in extra.items()])


def fixed_loss(task, model, seed=0):
    """Diffusion loss on the 4 training latents at fixed timesteps and noise (4 draws each)."""
    cache = task.cache
    x0 = task.latents({"tokens": torch.stack([cache[i]["tokens"] for i in range(4)])}, None).repeat(4, 1, 1)
    labels = cache.labels[:4].repeat(4)
    g = torch.Generator().manual_seed(seed)
    t = torch.randint(0, 1000, (16,), generator=g)
    noise = torch.randn(x0.shape, generator=g)
    with torch.no_grad():
        return task.diffusion.training_losses(lambda x, tt: model(x, tt, labels=labels), x0, t=t, noise=noise)["mse"].mean().item()


@pytest.fixture(scope="module")
def run(tmp_path_factory, make_dataset, make_tokenizer):
    """A tiny dataset, a no-text tokenizer, its latent cache and a DiT trained on 4 latents."""
    torch.set_num_threads(1)
    base = tmp_path_factory.mktemp("gen")
    data = make_dataset(base / "data")
    tok = make_tokenizer(base / "tok")
    cache = encode_dataset(tok, data, base / "cache", progress=False)
    cfg = dit_config(cache, 300)
    task = DiTTask(cfg)
    torch.manual_seed(cfg.seed)
    before = fixed_loss(task, task.build_model().eval())
    result = train_dit(cfg, base / "run")
    model = DiT.from_pretrained(result.model_dir / "dit")
    return {"base": base, "cache": cache, "result": result, "task": task, "before": before,
            "after": fixed_loss(task, model)}


@pytest.mark.slow
def test_tiny_dit_overfits_a_few_cached_latents(run):
    # at initialisation the DiT predicts zero noise: loss = E[eps^2] = 1
    assert 0.8 < run["before"] < 1.2
    print(f"fixed-noise loss before {run['before']:.3f}, after 300 steps {run['after']:.3f}")
    assert run["after"] < run["before"] / 4, (run["before"], run["after"])
    assert run["result"].nonfinite_total == 0


def test_train_dit_writes_a_generation_folder(run):
    model_dir = run["result"].model_dir
    assert {"dit", "tokenizer", "generation.json", "caption_pool.json"} == {p.name for p in model_dir.iterdir()}
    pipe = Pipeline.from_pretrained(model_dir)
    assert pipe.config.tokenizer == "tokenizer"  # the cache's tokenizer, copied into the folder
    assert pipe.tokenizer.config == TexTok.load_config(run["base"] / "tok")
    assert pipe.config.classes == ["kind0", "kind1", "kind2"]
    assert pipe.pool[1] == ["a thing of kind 1"]  # no held-out pool in this data set: the training captions
    cache = LatentCache(run["cache"])
    assert pipe.config.latent_mean == pytest.approx(cache.mean.tolist())


def test_sampling_is_deterministic_under_a_seed(run, tmp_path):
    pipe = Pipeline.from_pretrained(run["result"].model_dir)
    a = sample(pipe, class_id=1, num=3, steps=8, seed=5, out=tmp_path / "grid.png")
    b = sample(pipe, class_id=1, num=3, steps=8, seed=5)
    c = sample(pipe, class_id=1, num=3, steps=8, seed=6)
    assert a.shape == (3, 3, 32, 32) and a.min() >= -1 and a.max() <= 1
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert Image.open(tmp_path / "grid.png").size[0] > 32
    # the settings as a SampleSettings (what `textok sample` builds), keyword fields overriding it
    settings = SampleSettings(class_id=1, num=3, steps=8, seed=6)
    assert torch.equal(sample(pipe, settings), c) and torch.equal(sample(pipe, settings, seed=5), a)
    with pytest.raises(TypeError, match=r"unknown setting\(s\) \['classes'\]"):
        sample(pipe, classes=1)
    with pytest.raises(TypeError, match="settings must be a SampleSettings"):  # the old sample(folder, class_id)
        sample(pipe, 1)
    for sampler in ("ddim",):
        x = pipe(labels=[0, 2], steps=5, sampler=sampler, seed=1, cfg_scale=3.0)
        assert torch.equal(x, pipe(labels=[0, 2], steps=5, sampler=sampler, seed=1, cfg_scale=3.0))


def test_sample_fid_writes_a_valid_adm_npz(run, tmp_path):
    pipe = Pipeline.from_pretrained(run["result"].model_dir)
    out = sample_fid(pipe, num=7, out=tmp_path / "samples.npz", batch_size=3, steps=4, seed=2, progress=False)
    with np.load(out) as z:
        assert z.files == ["arr_0", "arr_1"]
        images, labels = z["arr_0"], z["arr_1"]
    assert images.shape == (7, 32, 32, 3) and images.dtype == np.uint8
    assert labels.tolist() == fid_labels(7, 3) == [0, 1, 2, 0, 1, 2, 0]  # class-balanced
    assert not (tmp_path / "samples.npz.parts").exists()
    # batch 1 (samples 3..5) is seeded by (seed, 1): the same whatever the number of processes
    again = pipe(labels=[0, 1, 2], steps=4, seed=2 * 1_000_003 + 1)
    from textok.data.transforms import to_uint8

    assert np.array_equal(images[3:6], to_uint8(again))
    with pytest.raises(ValueError, match=".npz"):
        sample_fid(pipe, num=2, out=tmp_path / "x.png")


def test_cli_sample_and_errors(run, tmp_path, capsys):
    model_dir = str(run["result"].model_dir)
    assert main(["sample", "--checkpoint", model_dir, "--class", "2", "--num", "2", "--steps", "3",
                 "--sampler", "ddim", "--out", str(tmp_path / "g.png")]) == 0
    assert (tmp_path / "g.png").is_file()
    assert main(["sample-fid", "--checkpoint", model_dir, "--num", "2", "--steps", "2", "--out", str(tmp_path / "s.npz"),
                 "--text-data", str(run["base"] / "data")]) == 0  # captions from that data set's text cache
    assert np.load(tmp_path / "s.npz")["arr_0"].shape == (2, 32, 32, 3)
    # --caption-choice cycle: this tokenizer has no text in its detokenizer, so the samples are the same
    assert main(["sample-fid", "--checkpoint", model_dir, "--num", "2", "--steps", "2", "--out", str(tmp_path / "c.npz"),
                 "--text-data", str(run["base"] / "data"), "--caption-choice", "cycle"]) == 0
    assert np.array_equal(np.load(tmp_path / "c.npz")["arr_0"], np.load(tmp_path / "s.npz")["arr_0"])
    assert main(["sample", "--checkpoint", model_dir, "--prompt", "a cat", "--num", "1", "--out", str(tmp_path / "h.png")]) == 2
    assert "class-conditional" in capsys.readouterr().err
    assert main(["sample", "--checkpoint", model_dir, "--class", "9", "--out", str(tmp_path / "h.png")]) == 2
    assert "[0, 3)" in capsys.readouterr().err
    assert main(["sample", "--checkpoint", str(tmp_path), "--class", "0", "--out", str(tmp_path / "h.png")]) == 2
    assert "generation.json" in capsys.readouterr().err


def test_a_caption_pool_given_at_load_replaces_the_recorded_one(run, tmp_path, capsys):
    model_dir = run["result"].model_dir
    pool_file = tmp_path / "train_pool.json"
    pool_file.write_text(json.dumps({"kind1": ["one thing", "another thing"]}))
    pipe = Pipeline.from_pretrained(model_dir, caption_pool=pool_file)
    assert pipe.pool == {1: ["one thing", "another thing"]} and pipe.config.caption_pool == str(pool_file.resolve())
    assert Pipeline.from_pretrained(model_dir).pool[1] == ["a thing of kind 1"]  # the folder is unchanged
    # sample-fid records the pool with its unfinished batches: another pool never finishes them
    out = sample_fid(model_dir, num=2, out=tmp_path / "s.npz", steps=2, progress=False, caption_pool=pool_file)
    assert np.load(out)["arr_0"].shape == (2, 32, 32, 3)
    assert main(["sample", "--checkpoint", str(model_dir), "--class", "1", "--num", "1", "--steps", "2",
                 "--caption-pool", str(pool_file), "--out", str(tmp_path / "g.png")]) == 0
    assert main(["sample-fid", "--checkpoint", str(model_dir), "--num", "2", "--steps", "2", "--out", str(tmp_path / "t.npz"),
                 "--caption-pool", str(tmp_path / "missing.json")]) == 2
    err = capsys.readouterr().err
    assert "caption pool not found" in err and "missing.json" in err
    # a ready Pipeline keeps its own pool and text data: giving them again is refused, not ignored
    with pytest.raises(ValueError, match="caption_pool cannot be applied to a loaded Pipeline"):
        sample(pipe, class_id=1, num=1, steps=2, caption_pool=pool_file)
    with pytest.raises(ValueError, match="text_data and caption_pool .*from_pretrained"):
        sample_fid(pipe, num=2, out=tmp_path / "u.npz", steps=2, text_data=tmp_path, caption_pool=pool_file)


def test_train_dit_resumes_exactly(run, tmp_path):
    import shutil

    cfg = dit_config(run["cache"], 4, **{"checkpoint.every": 2})
    full = train_dit(cfg, tmp_path / "full")
    # an interrupted run: the same folder with only the step-2 checkpoint
    shutil.copytree(tmp_path / "full", tmp_path / "part")
    shutil.rmtree(tmp_path / "part" / "checkpoints" / "step_00000004")
    shutil.rmtree(tmp_path / "part" / "model")
    resumed = train_dit(cfg, tmp_path / "part", resume=True)
    assert resumed.step == 4
    a = DiT.from_pretrained(full.model_dir / "dit").state_dict()
    b = DiT.from_pretrained(resumed.model_dir / "dit").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_dit_config_checks_against_the_cache(run):
    cfg = dit_config(run["cache"], 1, **{"model.num_tokens": 16})
    with pytest.raises(ValueError, match="model.num_tokens=8"):
        DiTTask(cfg).setup("cpu")
    with pytest.raises(ValueError, match="learned_variance"):
        dit_config(run["cache"], 1, **{"model.learn_sigma": False})
    with pytest.raises(ValueError, match="unknown DiT preset"):
        build_dit_config({"model": {"preset": "dit-huge"}})


def test_class_captions_come_from_the_pool_and_text_reaches_both(minilm, tmp_path):
    """Class-conditional: the detokenizer's captions are drawn from the held-out pool by seed.
    Text-to-image: the prompt's embedding conditions the DiT and the detokenizer."""
    tok = TexTok(TexTokConfig.from_preset("textok-mini-32", width=32, depth=1, heads=4, num_tokens=8, max_text_tokens=16))
    stats = dict(latent_mean=[0.0] * 8, latent_std=[1.0] * 8)
    pool_file = tmp_path / "pool.json"
    pool_file.write_text(json.dumps({"cat": ["a small cat", "a grey cat"], "dog": ["a big dog"]}))
    from textok.data import load_caption_pool
    from textok.generation import pool_by_label

    pool = pool_by_label(load_caption_pool(pool_file), ["cat", "dog"], pool_file)
    dit = DiT(DiTConfig.from_preset("dit-tiny", num_tokens=8, token_dim=8, num_classes=2))
    pipe = Pipeline(dit, tok, GenerationConfig(tokenizer=".", classes=["cat", "dog"], **stats), pool, text_encoder=minilm)
    import random

    drawn = pipe.class_captions([0, 0, 1, 0], random.Random(0))
    assert drawn[2] == "a big dog" and set(drawn[:2] + drawn[3:]) <= {"a small cat", "a grey cat"}
    assert drawn == pipe.class_captions([0, 0, 1, 0], random.Random(0))
    images = pipe(labels=[0, 1], steps=2, sampler="ddim")
    assert images.shape == (2, 3, 32, 32)
    # caption_choice="cycle": of the class's pool, the caption that best explains each sample's tokens
    images, tokens = pipe(labels=[0, 0, 1], steps=2, sampler="ddim", caption_choice="cycle", return_tokens=True)
    picked = CaptionedTokenizer(tok, minilm).choose_captions(tokens, [pool[0], pool[0], pool[1]])
    torch.testing.assert_close(images, pipe(labels=[0, 0, 1], steps=2, sampler="ddim", captions=picked))
    assert picked[2] == "a big dog"
    with pytest.raises(ValueError, match="caption_choice must be one of"):
        pipe(labels=[0], steps=2, caption_choice="best")
    # a caption changes the decoded image (the detokenizer sees it)
    a = pipe(labels=[0], steps=2, sampler="ddim", captions=["a small cat"])
    b = pipe(labels=[0], steps=2, sampler="ddim", captions=["a big red bus"])
    assert not torch.allclose(a, b)

    t2i = DiT(DiTConfig.from_preset("dit-tiny", num_tokens=8, token_dim=8, condition="text", text_dim=384))
    with torch.no_grad():
        for p in t2i.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    pipe = Pipeline(t2i, tok, GenerationConfig(tokenizer=".", **stats), text_encoder=minilm)
    imgs, tokens = pipe(prompts=["a red apple", "a blue car"], steps=3, sampler="ddim", cfg_scale=2.0, return_tokens=True)
    assert imgs.shape == (2, 3, 32, 32)
    _, other = pipe(prompts=["a red apple", "a green frog"], steps=3, sampler="ddim", cfg_scale=2.0, return_tokens=True)
    torch.testing.assert_close(tokens[0], other[0], atol=1e-4, rtol=1e-4)  # per-sample: same prompt, same noise
    assert not torch.allclose(tokens[1], other[1])  # the prompt reaches the DiT
    with pytest.raises(ValueError, match="text-to-image"):
        pipe(labels=[0])
    with pytest.raises(ValueError, match="for class-conditional DiTs"):
        pipe(prompts=["a red apple"], steps=2, caption_choice="cycle")
    with pytest.raises(ValueError, match="for class-conditional DiTs"):  # the function too, not silently ignored
        sample(pipe, prompt="a red apple", num=1, steps=2, caption_choice="cycle")
    with pytest.raises(ValueError, match="not among the model's classes"):
        pool_by_label(load_caption_pool(pool_file), ["bird"], pool_file)


def test_text_data_embeds_cached_captions_without_the_encoder(minilm, tmp_path, monkeypatch):
    """``Pipeline(text_data=DATA)``: prompts and captions that DATA's text cache holds come from the cache (as
    training saw them; no encoder is loaded, as on a machine without its weights); any other loads the encoder."""
    from textok.data import build_text_cache
    from textok.conditioning import DIT_MAX_TEXT_TOKENS

    captions = ["a red apple", "a blue car"]
    build_text_cache(tmp_path, minilm, captions=captions, progress=False)
    tok = TexTok(TexTokConfig.from_preset("textok-mini-32", width=32, depth=1, heads=4, num_tokens=8, max_text_tokens=16))
    t2i = DiT(DiTConfig.from_preset("dit-tiny", num_tokens=8, token_dim=8, condition="text", text_dim=384))
    stats = dict(latent_mean=[0.0] * 8, latent_std=[1.0] * 8)
    loads = []

    def encoder_loaded(*args, **kwargs):
        loads.append(args[0])
        return minilm.cut_at(args[2]) if args[2] else minilm

    monkeypatch.setattr("textok.conditioning.load_encoder", encoder_loaded)
    pipe = Pipeline(t2i, tok, GenerationConfig(tokenizer=".", **stats), text_data=tmp_path)
    images = pipe(prompts=captions, steps=2, sampler="ddim")
    assert images.shape == (2, 3, 32, 32) and loads == []
    cached = pipe.encoder("minilm", DIT_MAX_TEXT_TOKENS)(captions)
    fresh = minilm.cut_at(DIT_MAX_TEXT_TOKENS)(captions)
    torch.testing.assert_close(cached.embeddings.float(), fresh.embeddings.float(), atol=2e-3, rtol=0)  # fp16 cache
    pipe(prompts=["a green frog"], steps=2, sampler="ddim")  # not in the cache: the encoder
    assert loads == ["minilm"]
    # the DiT's and the detokenizer's conditioners (other max_tokens) share one table, loaded once
    pipe.encoder("minilm", 16)(captions)
    conditioners = list(pipe._conditioners.values())
    assert {c.max_tokens for c in conditioners} == {DIT_MAX_TEXT_TOKENS, 16}
    assert all(c.cache is conditioners[0].cache is not None for c in conditioners)


def test_a_moved_tokenizer_is_refused_before_training_and_data_tokenizer_points_to_it(run, tmp_path):
    """The cache records its tokenizer's path; previews and the generation folder decode with it. A tokenizer that
    is no longer there fails before the first step (not at the first preview), and ``data.tokenizer`` names it."""
    import shutil

    from textok.config import ConfigError

    tok = run["base"] / "tok"
    assert LatentCache(run["cache"]).meta["tokenizer"] == str(tok)
    cfg = dit_config(run["cache"], 2, **{"data.tokenizer": str(tmp_path / "gone")})
    with pytest.raises(ConfigError, match="gone, which is not there .*set data.tokenizer"):
        train_dit(cfg, tmp_path / "a")
    assert not (tmp_path / "a" / "checkpoints").exists() or not any((tmp_path / "a" / "checkpoints").iterdir())
    moved = shutil.copytree(tok, tmp_path / "moved")
    result = train_dit(dit_config(run["cache"], 2, **{"data.tokenizer": str(moved)}), tmp_path / "b")
    copied = (result.model_dir / "tokenizer" / "model.safetensors").read_bytes()
    assert copied == (moved / "model.safetensors").read_bytes()  # the generation folder holds the named tokenizer
    # a run resumes with its tokenizer named (or moved again): a location, not the recipe
    again = shutil.copytree(tok, tmp_path / "again")
    shutil.rmtree(moved)
    resumed = train_dit(dit_config(run["cache"], 3, **{"data.tokenizer": str(again)}), tmp_path / "b", resume=True)
    assert resumed.step == 3 and Pipeline.from_pretrained(resumed.model_dir).tokenizer.config == TexTok.load_config(again)
    moved = shutil.copytree(tok, tmp_path / "moved")
    # another tokenizer (twice the tokens) saved where the cache's was: config and weights agree (a config edited
    # alone is refused earlier, by the checkpoint's own size check: its weights do not match it)
    c = TexTok.load_config(moved)
    TexTok(dataclasses.replace(c, num_tokens=c.num_tokens * 2)).save_pretrained(moved)
    with pytest.raises(ConfigError, match="not the tokenizer it was encoded with"):
        train_dit(dit_config(run["cache"], 2, **{"data.tokenizer": str(moved)}), tmp_path / "c")
