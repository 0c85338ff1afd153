"""A tiny TexTok overfits a batch of 4 real emoji: the reconstruction loss falls >= 10x."""

import torch

from textok.training import Trainer, TokenizerTask

STEPS = 60


def test_tiny_model_overfits_four_emoji(emoji_root, tmp_path, make_config):
    cfg = make_config(emoji_root, "data.max_images=4", f"schedule.max_steps={STEPS}", "schedule.warmup_steps=5",
                      "model.width=64", "model.depth=2", "model.heads=4", "model.num_tokens=16",
                      "optim.lr=2e-3", "optim.grad_clip=1.0", f"checkpoint.every={STEPS}", "ema.decay=0.5")
    trainer = Trainer(TokenizerTask(cfg), cfg, tmp_path)
    loader = iter(trainer._loader(trainer.task.train_dataset()))
    losses = []
    for _ in range(STEPS):
        logs = trainer.train_step([next(loader)])
        losses.append(logs["g/l2"])
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    print(f"overfit: L2 {first:.4f} -> {last:.4f}")
    assert last < first / 10, f"L2 fell only from {first:.4f} to {last:.4f}"
    # the EMA model reconstructs the batch too (what gets saved for inference)
    batch = trainer.task.collate([trainer.task.train_dataset()[i] for i in range(4)])
    images, _ = trainer.task.preview(trainer.ema.model, batch)
    mse = torch.mean((images[4:] - images[:4]) ** 2).item()
    assert mse < first / 5
