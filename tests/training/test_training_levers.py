"""The speedrun's levers (issue 43) change speed, never what a run computes unless they say so:
the in-memory data set gives the folder loader's batches; grouping by caption length keeps every
sample once an epoch; Muon and the in-memory path resume exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from textok.data import InMemoryDataset, open_dataset
from textok.data.fetch import fetch_scenes
from textok.io import load_state_dict
from textok.config import ConfigError
from textok.training import GlobalBatchSampler, Trainer, TokenizerTask, load_config
from textok.training.optim import Muon, MultiOptimizer, build_optimizer, hidden_matrices, ns_dtype
from textok.models.textok import TexTok, TexTokConfig

from .conftest import tiny_config


@pytest.fixture(scope="module")
def scenes_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("scenes") / "scenes"
    fetch_scenes(root, count=48, size=32, seed=3, eval_count=8)
    return root


def _batches(cfg, out: Path, n: int) -> list[dict]:
    trainer = Trainer(TokenizerTask(cfg), cfg, out)
    try:
        loader = iter(trainer._loader(trainer.task.train_dataset()))
        return [next(loader) for _ in range(n)]
    finally:
        trainer.release()


@pytest.mark.parametrize("group", [0, 3])
def test_in_memory_gives_the_folder_loaders_batches(scenes_root, tmp_path, group):
    common = [f"data.group_by_length={group}", "data.max_images=40", "optim.batch_size=8", "model.max_text_tokens=40"]
    files = _batches(tiny_config(scenes_root, *common), tmp_path / "files", 7)  # past an epoch (5 batches)
    memory = _batches(tiny_config(scenes_root, *common, "data.in_memory=true"), tmp_path / "memory", 7)
    for a, b in zip(files, memory):
        assert a["keys"] == b["keys"] and a["captions"] == b["captions"]
        assert torch.equal(a["images"], b["images"]) and torch.equal(a["labels"], b["labels"])


def test_in_memory_keeps_uint8_when_exact_and_refuses_random_items(scenes_root):
    ds = InMemoryDataset(open_dataset(scenes_root, "train", image_size=32), progress=False)
    assert ds.images.dtype == torch.uint8 and len(ds) == 48
    batch = ds.batch([3, 1])
    assert batch["keys"] == [ds[3]["key"], ds[1]["key"]] and batch["images"].shape == (2, 3, 32, 32)
    with pytest.raises(ValueError, match="in_memory needs items that are the same"):
        InMemoryDataset(open_dataset(scenes_root, "train", image_size=32, train=True), progress=False)
    with pytest.raises(Exception, match="data.in_memory=true .* needs data.augment=false"):
        tiny_config(scenes_root, "data.in_memory=true", "data.augment=true")


def test_grouping_by_length_loses_and_repeats_no_sample_in_an_epoch():
    n, B = 103, 8
    lengths = torch.randint(5, 40, (n,), generator=torch.Generator().manual_seed(0)).tolist()
    plain = GlobalBatchSampler(n, B, 1, 1, 0, seed=5)
    grouped = GlobalBatchSampler(n, B, 1, 1, 0, seed=5, lengths=lengths, group=4)
    steps = plain.steps_per_epoch
    for epoch in range(2):
        a = [plain.global_batch(epoch * steps + s) for s in range(steps)]
        b = [grouped.global_batch(epoch * steps + s) for s in range(steps)]
        flat = [i for batch in b for i in batch]
        assert len(flat) == len(set(flat)) == steps * B  # none repeated
        assert set(flat) == {i for batch in a for i in batch}  # the same samples as without grouping

        def spread(batches):
            return sum(max(lengths[i] for i in x) - min(lengths[i] for i in x) for x in batches) / len(batches)

        assert spread(b) < 0.5 * spread(a)  # similar lengths within a batch
    with pytest.raises(ValueError, match="one length per sample"):
        GlobalBatchSampler(n, B, 1, 1, 0, seed=5, lengths=lengths[:-1], group=4)


def test_muon_takes_the_blocks_matrices_and_adamw_the_rest():
    model = TexTok(TexTokConfig(image_size=32, patch_size=8, num_tokens=2, width=32, depth=2, heads=2,
                                max_text_tokens=8))
    opt = build_optimizer(model, tiny_config(Path("unused"), "optim.optimizer=muon", "optim.muon_lr=0.01").optim)
    assert isinstance(opt, MultiOptimizer) and set(opt.optimizers) == {"muon", "adamw"}
    muon = {id(p) for g in opt.optimizers["muon"].param_groups for p in g["params"]}
    assert muon == hidden_matrices(model) and all(p.ndim == 2 for p in model.parameters() if id(p) in muon)
    assert id(model.patch_embed.weight) not in muon and id(model.to_pixels.weight) not in muon
    assert [g["lr"] for g in opt.param_groups] == [0.01, 3e-3]
    assert ns_dtype(torch.device("cpu")) in (torch.float32, torch.bfloat16)
    with pytest.raises(ValueError, match="optim.optimizer changed"):
        opt.load_state_dict({"adamw": opt.optimizers["adamw"].state_dict()})
    # muon_scope=matrices: every nn.Linear weight, the input and output projections too
    opt = build_optimizer(model, tiny_config(Path("unused"), "optim.optimizer=muon", "optim.muon_scope=matrices",
                                             "optim.muon_ns_steps=3").optim)
    assert opt.optimizers["muon"].param_groups[0]["ns_steps"] == 3
    muon = {id(p) for g in opt.optimizers["muon"].param_groups for p in g["params"]}
    assert muon == hidden_matrices(model, "matrices") > hidden_matrices(model)
    assert {id(model.patch_embed.weight), id(model.to_pixels.weight), id(model.decoder.text.proj.weight)} <= muon
    assert all(p.ndim == 2 for p in model.parameters() if id(p) in muon)
    with pytest.raises(ValueError, match="muon_scope"):
        hidden_matrices(model, "all")


def test_muon_in_memory_grouped_run_resumes_exactly(scenes_root, tmp_path, train_in_process):
    common = ["optim.optimizer=muon", "data.in_memory=true", "data.group_by_length=2", "data.max_images=32",
              "model.max_text_tokens=40", "schedule.decay=constant", "checkpoint.every=100"]
    short = tiny_config(scenes_root, *common, "schedule.max_steps=3")
    long_ = tiny_config(scenes_root, *common, "schedule.max_steps=6")
    train_in_process(short, tmp_path / "resumed")
    assert train_in_process(long_, tmp_path / "resumed", resume=True).step == 6
    train_in_process(long_, tmp_path / "straight")
    a = load_state_dict(tmp_path / "resumed" / "checkpoints" / "step_00000006" / "model.safetensors")
    b = load_state_dict(tmp_path / "straight" / "checkpoints" / "step_00000006" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _float32_newton_schulz(grad, ns_coefficients, ns_steps, eps):
    """torch.optim.Muon's per-matrix iteration (torch/optim/_muon.py) in float32 instead of bfloat16."""
    a, b, c = ns_coefficients
    x = grad.float().T if grad.size(0) > grad.size(1) else grad.float()
    x = x / x.norm().clamp(min=eps)
    for _ in range(ns_steps):
        gram = x @ x.T
        x = torch.addmm(x, torch.addmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
    return x.T if grad.size(0) > grad.size(1) else x


def test_muon_batches_same_shape_matrices_and_matches_torchs_update(monkeypatch):
    # textok's Muon stacks same-shape matrices (tall, wide, square) into one batched Newton-Schulz: the same
    # updates as torch.optim.Muon's one matrix at a time, run in float32
    monkeypatch.setattr(torch.optim._muon, "_zeropower_via_newtonschulz", _float32_newton_schulz)
    torch.manual_seed(0)
    shapes = [(6, 4), (4, 6), (4, 4), (4, 4), (6, 4)]
    ours = [torch.nn.Parameter(torch.randn(s)) for s in shapes]
    ref = [torch.nn.Parameter(p.detach().clone()) for p in ours]
    kw = dict(lr=0.02, weight_decay=0.01, momentum=0.9, adjust_lr_fn="match_rms_adamw")
    opt, ref_opt = Muon(ours, ns_dtype=torch.float32, **kw), torch.optim.Muon(ref, **kw)
    for _ in range(3):
        grads = [torch.randn(s) for s in shapes]
        for p, q, g in zip(ours, ref, grads):
            p.grad, q.grad = g.clone(), g.clone()
        opt.step()
        ref_opt.step()
    for p, q in zip(ours, ref):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_muon_shares_the_newton_schulz_work_by_flops():
    from textok.training.optim import _assign

    params = [torch.zeros(s) for s in [(64, 256), (256, 64), (64, 64), (64, 64), (64, 64), (64, 64), (8, 64)]]
    owner = _assign(params, 2)
    load = [sum(p.shape[0] * p.shape[1] * min(p.shape) for p, o in zip(params, owner) if o == r) for r in (0, 1)]
    assert sorted(set(owner)) == [0, 1] and abs(load[0] - load[1]) <= 64 * 64 * 64 + 8 * 8 * 64
    assert _assign(params, 1) == [0] * len(params)


def test_polar_express_brings_small_singular_values_closer_to_one():
    # optim.muon_ns=polar_express: each iteration's quintic is tuned to what the ones before left; on a gradient
    # whose singular values span 1e-3..1 its worst singular value after 4 or 5 iterations is nearer 1 than the
    # repeated quintic's
    torch.manual_seed(0)
    u, _ = torch.linalg.qr(torch.randn(32, 32))
    v, _ = torch.linalg.qr(torch.randn(96, 32))
    g = (u @ torch.diag(torch.logspace(-3, 0, 32)) @ v.T)[None]
    for steps in (4, 5):
        group = dict(ns_coefficients=(3.4445, -4.7750, 2.0315), eps=1e-7, ns_steps=steps)
        worst = [(torch.linalg.svdvals(Muon._orthogonalise(g, group, torch.float32, pe)) - 1).abs().max()
                 for pe in (False, True)]
        assert worst[1] < worst[0] - 0.1, (steps, worst)
    with pytest.raises(ConfigError, match="muon_ns"):
        load_config(Path(__file__).resolve().parents[2] / "configs" / "scenes32_speedrun.yaml", ["optim.muon_ns=cubic"])


def test_speedrun_both_is_record_5_with_text_in_both():
    """configs/scenes32_speedrun_both.yaml (the scenes study's record5 side runs) is record 5's recipe with the
    caption in the tokenizer and the detokenizer, nothing else changed."""
    from textok.config import to_dict

    configs = Path(__file__).resolve().parents[2] / "configs"
    both, record5 = (to_dict(load_config(configs / f))
                     for f in ("scenes32_speedrun_both.yaml", "scenes32_speedrun.yaml"))
    assert (both["model"]["text_in"], record5["model"]["text_in"]) == ("both", "decoder")
    both["model"]["text_in"] = "decoder"
    assert both == record5
