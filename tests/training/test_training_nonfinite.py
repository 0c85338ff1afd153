"""A non-finite loss skips the step (weights, optimiser and EMA untouched) and is counted;
too many in a row stop the run with a message and a saved checkpoint."""

import pytest
import torch

from textok.io import load_state_dict
from textok.training import NonFiniteLossError, Trainer, TokenizerTask
from textok.training.task import StepResult


class PoisonedTask(TokenizerTask):
    """Returns a NaN loss on the given steps."""

    def __init__(self, config, bad_steps):
        super().__init__(config)
        self.bad_steps = set(bad_steps)

    def generator_loss(self, model, batch, step, rng):
        res = super().generator_loss(model, batch, step, rng)
        if step in self.bad_steps:
            return StepResult(res.loss * float("nan"), res.logs, res.aux)
        return res


def test_nonfinite_step_is_skipped_and_counted(emoji_root, tmp_path, make_config):
    cfg = make_config(emoji_root, "schedule.max_steps=3", "model.text_in=none")
    trainer = Trainer(PoisonedTask(cfg, bad_steps={1}), cfg, tmp_path)
    loader = iter(trainer._loader(trainer.task.train_dataset()))
    batches = [next(loader) for _ in range(3)]
    trainer.train_step([batches[0]])
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    ema_before = {k: v.clone() for k, v in trainer.ema.model.state_dict().items()}
    logs = trainer.train_step([batches[1]])  # NaN: skipped
    assert logs["nonfinite_total"] == 1.0 and trainer.nonfinite_in_a_row == 1
    for k, v in trainer.model.state_dict().items():
        assert torch.equal(v, before[k]), k
        assert torch.isfinite(v).all()
    for k, v in trainer.ema.model.state_dict().items():
        assert torch.equal(v, ema_before[k]), k
    trainer.train_step([batches[2]])  # finite again: trains, the in-a-row counter resets
    assert trainer.nonfinite_in_a_row == 0 and trainer.nonfinite_total == 1 and trainer.step == 3
    assert any(not torch.equal(v, before[k]) for k, v in trainer.model.state_dict().items())


def test_too_many_nonfinite_steps_stop_with_a_checkpoint(emoji_root, tmp_path, make_config):
    cfg = make_config(emoji_root, "schedule.max_steps=10", "max_nonfinite_in_a_row=3", "checkpoint.every=100",
                      "model.text_in=none")
    with pytest.raises(NonFiniteLossError, match="3 non-finite steps in a row") as err:
        Trainer(PoisonedTask(cfg, bad_steps=range(1, 10)), cfg, tmp_path).train()
    ckpt = tmp_path / "checkpoints" / "step_00000004"
    assert str(ckpt) in str(err.value)
    weights = load_state_dict(ckpt / "model.safetensors")
    assert all(torch.isfinite(v).all() for v in weights.values())
