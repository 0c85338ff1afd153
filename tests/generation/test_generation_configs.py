from pathlib import Path

import pytest
import torch

from textok.config import ConfigError
from textok.latents import encode_dataset
from textok.training.dit_task import DiTTask, build_dit_config, load_dit_config

CONFIGS = sorted((Path(__file__).parents[2] / "configs").glob("*dit*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_dit_configs_load(path):
    cfg = load_dit_config(path)
    assert cfg.diffusion.learned_variance == cfg.model.learn_sigma
    assert cfg.model.num_tokens > 0


def test_dit_t2i_task_step_uses_caption_dropout(tmp_path, make_dataset, make_tokenizer, minilm):
    data, tok = make_dataset(tmp_path / "data"), make_tokenizer(tmp_path / "tok")
    cache = encode_dataset(tok, data, tmp_path / "cache", progress=False)
    cfg = build_dit_config({
        "model": {"preset": "dit-tiny", "num_tokens": 8, "token_dim": 8, "condition": "text", "text_dim": 384,
                  "caption_dropout": 0.5},
        "data": {"cache": str(cache), "use_text_cache": False},
        "optim": {"batch_size": 4},
    })
    task = DiTTask(cfg)
    model = task.build_model()
    task.setup("cpu")
    task.text._encoder = minilm  # the session's encoder instead of loading it again
    batch = task.collate([task.train_dataset()[i] for i in range(8)])
    res = task.generator_loss(model, batch, 0, torch.Generator().manual_seed(0))
    assert torch.isfinite(res.loss) and {"mse", "vb"} <= set(res.logs)
    res.loss.backward()
    assert model.null_text.grad is not None  # the learned null caption is trained
    assert task.preview_batch(3)["captions"] == ["a thing of kind 0", "a thing of kind 1", "a thing of kind 2"]


def test_dit_token_shape_comes_from_the_cache(tmp_path, make_dataset, make_tokenizer):
    data, tok = make_dataset(tmp_path / "data"), make_tokenizer(tmp_path / "tok")
    cache = encode_dataset(tok, data, tmp_path / "cache", progress=False)
    base = {"model": {"preset": "dit-tiny", "condition": "text"}, "data": {"cache": str(cache)}}
    cfg = build_dit_config(base)  # the YAML states no shape: N x d from cache.json, text_dim from the encoder
    assert (cfg.model.num_tokens, cfg.model.token_dim, cfg.model.text_dim) == (8, 8, 384)
    assert build_dit_config(base, ["model.num_tokens=8"]).model.num_tokens == 8  # stated and equal: fine
    bad = build_dit_config(base, ["model.num_tokens=4"])
    with pytest.raises(ConfigError, match=r"model.num_tokens/token_dim = 4/8, but the cache .* holds \[8, 8\]"):
        DiTTask(bad).cache
    with pytest.raises(ConfigError, match="model.text_dim=16, but the text encoder 'minilm' gives 384"):
        DiTTask(build_dit_config(base, ["model.text_dim=16"])).cache
