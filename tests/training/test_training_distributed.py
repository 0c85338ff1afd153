"""Two CPU processes (gloo, through Accelerate) give the same first update as one process with
the same global batch: the data is sharded, not duplicated, and gradients are averaged."""

import json

import pytest
import torch

from textok.io import load_state_dict

# deterministic latent: the only randomness left would be posterior noise, whose draw depends on
# the micro-batch shape; eps=1 makes Adam's first update ~ lr * g (sensitive to the gradient's scale)
OVERRIDES = ["schedule.max_steps=1", "model.latent=deterministic", "optim.eps=1.0", "optim.lr=1.0",
             "optim.grad_clip=0", "loss.perceptual_weight=0.1", "checkpoint.every=1"]


@pytest.mark.slow
def test_two_processes_match_one(emoji_root, tmp_path, make_config, train_two_processes, train_in_process):
    out2 = tmp_path / "two"
    train_two_processes(emoji_root, OVERRIDES, out2)

    cfg = make_config(emoji_root, *OVERRIDES)
    out1 = tmp_path / "one"
    train_in_process(cfg, out1)

    one = load_state_dict(out1 / "checkpoints" / "step_00000001" / "model.safetensors")
    two = load_state_dict(out2 / "checkpoints" / "step_00000001" / "model.safetensors")
    for k in one:
        torch.testing.assert_close(two[k], one[k], rtol=1e-5, atol=1e-6, msg=lambda m: f"{k}: {m}")
    summary1 = (out1 / "train_summary.json").read_text()
    summary2 = (out2 / "train_summary.json").read_text()
    g1, g2 = json.loads(summary1)["last_logs"]["grad_norm"], json.loads(summary2)["last_logs"]["grad_norm"]
    assert g2 == pytest.approx(g1, rel=1e-4)  # the averaged gradient, not a per-process one
    assert json.loads(summary2)["processes"] == 2


# eps=1: AdamW's update ~ lr * g, so the key bias (gradient ~0: softmax ignores it) is not rounding noise / eps
MUON = ["schedule.max_steps=2", "schedule.warmup_steps=0", "model.latent=deterministic", "optim.optimizer=muon",
        "optim.muon_scope=matrices", "optim.lr=1e-2", "optim.eps=1.0", "optim.grad_clip=0",
        "loss.perceptual_weight=0.1", "checkpoint.every=2"]


@pytest.mark.slow
@pytest.mark.parametrize("shard, sync", [("true", "ddp"), ("false", "ddp"), ("true", "shared_memory")])
def test_two_processes_with_muon_match_one(emoji_root, tmp_path, make_config, train_two_processes, train_in_process,
                                           shard, sync):
    # optim.muon_shard: each process orthogonalises its share of the matrices and an all_gather shares them;
    # grad_sync=shared_memory: no DDP, gradients averaged (and Muon's shares gathered) through /dev/shm. The
    # weights after two steps are one process's either way
    overrides = MUON + [f"optim.muon_shard={shard}", f"grad_sync={sync}"]
    out2 = tmp_path / "two"
    train_two_processes(emoji_root, overrides, out2)
    out1 = tmp_path / "one"
    train_in_process(make_config(emoji_root, *overrides), out1)
    one = load_state_dict(out1 / "checkpoints" / "step_00000002" / "model.safetensors")
    two = load_state_dict(out2 / "checkpoints" / "step_00000002" / "model.safetensors")
    for k in one:
        torch.testing.assert_close(two[k], one[k], rtol=1e-4, atol=1e-5, msg=lambda m: f"{k}: {m}")
