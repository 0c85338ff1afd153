"""Exact resume: a run killed with SIGKILL after a checkpoint and resumed ends bit-equal to an
uninterrupted run (everything on: LPIPS, GAN with LeCAM and R1, KL, caption dropout, EMA).
Also: a checkpoint from a different config is refused, naming the fields."""

import shutil
from pathlib import Path

import pytest
import torch

from textok.io import load_state_dict
from textok.training import Trainer, TokenizerTask

EVERYTHING_ON = [
    "loss.perceptual_weight=0.1", "loss.adversarial_weight=0.1", "loss.discriminator_start=2", "loss.r1_every=2",
    "loss.discriminator_channel_base=256", "loss.discriminator_channel_max=32", "data.caption_dropout=0.5",
    "data.max_images=8", "data.augment=true", "schedule.max_steps=6", "checkpoint.every=3",
]


def _final(out: Path) -> dict[str, dict[str, torch.Tensor]]:
    ck = out / "checkpoints" / "step_00000006"
    return {name: load_state_dict(ck / f"{name}.safetensors") for name in ("model", "ema", "critic")}


@pytest.mark.slow
def test_kill_and_resume_is_bit_exact(emoji_root, tmp_path, make_config, train_and_kill, train_in_process):
    cfg = make_config(emoji_root, *EVERYTHING_ON)
    killed = tmp_path / "killed"
    train_and_kill(emoji_root, EVERYTHING_ON, killed, step=3)
    assert not (killed / "checkpoints" / "step_00000006").exists()  # it really died mid-run

    resumed = train_in_process(cfg, killed, resume=True)
    assert resumed.step == 6
    straight = tmp_path / "straight"
    train_in_process(cfg, straight)

    a, b = _final(killed), _final(straight)
    for name in a:
        assert a[name].keys() == b[name].keys()
        for k in a[name]:
            assert torch.equal(a[name][k], b[name][k]), f"{name}.{k} differs after resume"
    assert torch.equal(load_state_dict(killed / "model" / "model.safetensors")["to_pixels.weight"],
                       b["ema"]["to_pixels.weight"])  # model/ holds the EMA weights


def test_mismatched_checkpoint_is_refused(emoji_root, tmp_path, make_config):
    cfg = make_config(emoji_root, "schedule.max_steps=2", "checkpoint.every=1")
    Trainer(TokenizerTask(cfg), cfg, tmp_path).train()
    other = make_config(emoji_root, "schedule.max_steps=2", "optim.lr=0.5", "model.num_tokens=4")
    with pytest.raises(ValueError, match=r"different config.*model\.num_tokens: 8 != 4.*optim\.lr"):
        Trainer(TokenizerTask(other), other, tmp_path, resume=True)
    # logging / checkpoint settings may change between runs
    same = make_config(emoji_root, "schedule.max_steps=2", "checkpoint.every=2", "logging.log_every=1")
    assert Trainer(TokenizerTask(same), same, tmp_path, resume=True).step == 2
    # without --resume an existing run folder is not silently overwritten
    with pytest.raises(ValueError, match="--resume"):
        Trainer(TokenizerTask(cfg), cfg, tmp_path)


def test_extending_a_constant_lr_run_equals_the_longer_run(emoji_root, tmp_path, make_config, train_in_process):
    """Resume with a larger schedule.max_steps: with a constant learning rate the extended run is
    bit-equal to a run trained for the longer budget in one go (the study's doubling protocol)."""
    common = ["schedule.decay=constant", "schedule.warmup_steps=1", "data.max_images=8", "checkpoint.every=100"]
    short, long_ = make_config(emoji_root, *common, "schedule.max_steps=2"), make_config(emoji_root, *common, "schedule.max_steps=4")
    train_in_process(short, tmp_path / "extended")
    extended = train_in_process(long_, tmp_path / "extended", resume=True)
    assert extended.step == 4
    train_in_process(long_, tmp_path / "straight")
    a = load_state_dict(tmp_path / "extended" / "model" / "model.safetensors")
    b = load_state_dict(tmp_path / "straight" / "model" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    # shrinking below the step reached is refused with a message
    shorter = make_config(emoji_root, *common, "schedule.max_steps=3")
    with pytest.raises(ValueError, match="beyond schedule.max_steps=3"):
        Trainer(TokenizerTask(shorter), shorter, tmp_path / "extended", resume=True)


def test_a_wsd_cooldown_branches_off_a_constant_trunk_exactly(emoji_root, tmp_path, make_config, train_in_process):
    """A constant-lr checkpoint at step 2 resumed with decay=wsd (2 cool-down steps, to step 4) is
    bit-equal to the 4-step wsd run trained in one go; a branch that would rewrite the learning rate
    of steps already taken is refused with a message."""
    common = ["schedule.warmup_steps=1", "data.max_images=8", "checkpoint.every=100"]
    wsd = ["schedule.decay=wsd", "schedule.cooldown_steps=2", "schedule.max_steps=4"]
    trunk = make_config(emoji_root, *common, "schedule.decay=constant", "schedule.max_steps=2")
    train_in_process(trunk, tmp_path / "trunk")
    shutil.copytree(tmp_path / "trunk", tmp_path / "branch")
    branch = train_in_process(make_config(emoji_root, *common, *wsd), tmp_path / "branch", resume=True)
    assert branch.step == 4
    train_in_process(make_config(emoji_root, *common, *wsd), tmp_path / "straight")
    a = load_state_dict(tmp_path / "branch" / "model" / "model.safetensors")
    b = load_state_dict(tmp_path / "straight" / "model" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    # cooling down over 3 steps to step 4 would lower the learning rate of step 1, which the trunk took at full rate
    late = make_config(emoji_root, *common, "schedule.decay=wsd", "schedule.cooldown_steps=3", "schedule.max_steps=4")
    with pytest.raises(ValueError, match="changes the learning rate of steps already taken"):
        Trainer(TokenizerTask(late), late, tmp_path / "trunk", resume=True)


def test_training_seconds_carry_across_a_resume(emoji_root, tmp_path, make_config, train_in_process):
    """A run trained in two processes reports the seconds of both (the checkpoint carries the count); a checkpoint
    written before the count existed makes the total incomplete, and says so."""
    import json

    common = ["schedule.decay=constant", "schedule.warmup_steps=1", "data.max_images=8", "checkpoint.every=100"]
    first = train_in_process(make_config(emoji_root, *common, "schedule.max_steps=2"), tmp_path / "run")
    assert first.total_seconds == pytest.approx(first.seconds) and first.total_seconds_complete
    state = json.loads((first.checkpoint / "trainer_state.json").read_text())
    assert state["train_seconds"] == pytest.approx(first.seconds, abs=0.05) and state["train_seconds_complete"]
    second = train_in_process(make_config(emoji_root, *common, "schedule.max_steps=4"), tmp_path / "run", resume=True)
    assert second.total_seconds == pytest.approx(state["train_seconds"] + second.seconds)
    assert second.total_seconds_complete
    summary = json.loads((tmp_path / "run" / "train_summary.json").read_text())
    assert summary["total_seconds"] == pytest.approx(second.total_seconds, abs=0.01)

    # a checkpoint of an older textok: no count in it
    old = second.checkpoint / "trainer_state.json"
    legacy = {k: v for k, v in json.loads(old.read_text()).items() if not k.startswith("train_seconds")}
    old.write_text(json.dumps(legacy))
    third = train_in_process(make_config(emoji_root, *common, "schedule.max_steps=5"), tmp_path / "run", resume=True)
    assert third.total_seconds == pytest.approx(third.seconds) and not third.total_seconds_complete
