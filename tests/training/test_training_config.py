"""Configs, the learning-rate schedule, the data order and the checkpoint serialisation."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from textok.config import ConfigError
from textok.training import GlobalBatchSampler, baseline_of, build_config, load_config, lr_at
from textok.training.checkpoint import flatten_state, rng_state, set_rng_state, unflatten_state

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.mark.parametrize("name", ["emoji64_textok", "emoji64_baseline", "imagenet256_textok_b"])
def test_shipped_configs_load(name):
    cfg = load_config(CONFIGS / f"{name}.yaml")
    assert cfg.model.image_size in (64, 256)
    assert cfg.optim.batch_size % cfg.optim.grad_accum_steps == 0


def test_baseline_config_is_the_twin():
    textok = load_config(CONFIGS / "emoji64_textok.yaml")
    baseline = load_config(CONFIGS / "emoji64_baseline.yaml")
    assert baseline_of(textok) == baseline  # the shipped baseline differs only by text_in
    assert baseline.model.text_in == "none"


def test_overrides_and_errors_name_the_field():
    cfg = load_config(CONFIGS / "emoji64_textok.yaml", ["model.num_tokens=8", "optim.lr=0.5"])
    assert cfg.model.num_tokens == 8 and cfg.optim.lr == 0.5
    with pytest.raises(ConfigError, match=r"optim.*batch_sizee"):
        load_config(CONFIGS / "emoji64_textok.yaml", ["optim.batch_sizee=3"])
    with pytest.raises(ConfigError, match="optim.batch_size"):
        load_config(CONFIGS / "emoji64_textok.yaml", ["optim.batch_size=30", "optim.grad_accum_steps=4"])
    with pytest.raises(ConfigError, match="preset"):
        build_config({"model": {"preset": "textok-xxl"}})
    with pytest.raises(ConfigError, match="image_size"):
        build_config({"model": {"image_size": 30, "patch_size": 8}})
    with pytest.raises(ConfigError, match="optim.muon_ns_steps"):
        load_config(CONFIGS / "emoji64_textok.yaml", ["optim.muon_ns_steps=0"])


def test_lr_schedule_warmup_then_cosine():
    cfg = build_config({"schedule": {"max_steps": 110, "warmup_steps": 10, "min_lr_ratio": 0.1}})
    lrs = [lr_at(s, 1.0, cfg.schedule) for s in range(111)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)  # linear warm-up
    assert lrs[10] == pytest.approx(1.0)
    assert lrs[60] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert lrs[110] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))  # monotone decay


def test_lr_schedule_wsd_is_constant_then_a_linear_cooldown():
    cfg = build_config({"schedule": {"max_steps": 100, "warmup_steps": 10, "decay": "wsd", "cooldown_steps": 20}})
    lrs = [lr_at(s, 2.0, cfg.schedule) for s in range(100)]
    assert lrs[9] == pytest.approx(2.0) and lrs[10:80] == [2.0] * 70  # warm-up, then stable
    assert lrs[80] == pytest.approx(1.9) and lrs[90] == pytest.approx(0.9) and lrs[99] == 0.0
    assert all(a > b for a, b in zip(lrs[79:], lrs[80:]))  # every cool-down step is lower than the last
    # the stable phase is the constant schedule exactly: a constant trunk branches into it
    const = build_config({"schedule": {"max_steps": 100, "warmup_steps": 10, "decay": "constant"}})
    assert lrs[:80] == [lr_at(s, 2.0, const.schedule) for s in range(80)]
    with pytest.raises(ConfigError, match="cooldown_steps"):
        build_config({"schedule": {"max_steps": 100, "warmup_steps": 10, "decay": "wsd"}})
    with pytest.raises(ConfigError, match="cooldown_steps"):
        build_config({"schedule": {"max_steps": 100, "warmup_steps": 10, "decay": "wsd", "cooldown_steps": 91}})


def test_sampler_partitions_the_global_batch():
    """Processes x micro-batches cover exactly the global batch, in the same order as 1 process."""
    one = GlobalBatchSampler(50, 8, accum=1, world=1, rank=0, seed=3)
    ref = [i for i, _ in next(iter(one))]
    parts = {}
    for rank in range(2):
        it = iter(GlobalBatchSampler(50, 8, accum=2, world=2, rank=rank, seed=3))
        for micro in range(2):
            parts[micro * 2 + rank] = [i for i, _ in next(it)]
    assert [i for p in range(4) for i in parts[p]] == ref
    # the data position is a function of the step: starting at step 7 == skipping 7 steps
    it = iter(GlobalBatchSampler(50, 8, accum=1, world=1, rank=0, seed=3))
    for _ in range(7):
        next(it)
    assert next(it) == next(iter(GlobalBatchSampler(50, 8, accum=1, world=1, rank=0, seed=3, start_step=7)))
    # an epoch is a permutation (6 full batches of 8 out of 50)
    it = iter(GlobalBatchSampler(50, 8, accum=1, world=1, rank=0, seed=3))
    seen = [i for _ in range(6) for i, _ in next(it)]
    assert len(set(seen)) == 48
    with pytest.raises(ValueError, match="fewer than one global batch"):
        GlobalBatchSampler(5, 8, 1, 1, 0, 0)


def test_state_flattening_roundtrip():
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    sd = opt.state_dict()
    skeleton, tensors = flatten_state(sd)
    back = unflatten_state(skeleton, tensors)
    assert set(back["state"]) == set(sd["state"])  # int keys survive
    for k, v in sd["state"][0].items():
        assert torch.equal(back["state"][0][k], v)
    assert back["param_groups"] == sd["param_groups"]


def test_rng_state_roundtrip():
    import random

    state = rng_state()
    skeleton, tensors = flatten_state(state)
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    set_rng_state(unflatten_state(skeleton, tensors))
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == a
