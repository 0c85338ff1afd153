"""Training: typed configs, the generic ``Trainer`` (HF Accelerate), tasks and checkpoints.

    from textok.training import load_config, TokenizerTask, Trainer
    cfg = load_config("configs/emoji64_textok.yaml", ["model.num_tokens=16"])
    Trainer(TokenizerTask(cfg), cfg, "runs/emoji64").train()   # -> runs/emoji64/model/
"""

from .checkpoint import latest_checkpoint, list_checkpoints
from .config import (CheckpointConfig, DataConfig, EMAConfig, LoggingConfig, OptimConfig, ScheduleConfig,
                     TrainConfig, TrainerConfig, baseline_of, build_config, load_config)
from .task import StepResult, Task, TokenizerTask, unwrap
from .trainer import (EMA, GlobalBatchSampler, NonFiniteLossError, Trainer, TrainingInterrupted, TrainResult, cpu_name,
                      lr_at)

__all__ = [
    "TrainerConfig", "TrainConfig", "DataConfig", "OptimConfig", "ScheduleConfig", "EMAConfig", "CheckpointConfig", "LoggingConfig",
    "build_config", "load_config", "baseline_of", "Task", "TokenizerTask", "StepResult", "unwrap",
    "Trainer", "TrainResult", "TrainingInterrupted", "GlobalBatchSampler", "EMA", "lr_at", "NonFiniteLossError",
    "latest_checkpoint", "list_checkpoints", "train_tokenizer", "cpu_name",
]


def train_tokenizer(config, out_dir, resume: bool = False, init_from=None, baseline: bool = False) -> TrainResult:
    """Train TexTok (or, with ``baseline=True``, its no-text twin) into ``out_dir``."""
    if baseline:
        config = baseline_of(config)
    return Trainer(TokenizerTask(config), config, out_dir, resume=resume, init_from=init_from).train()
