"""Typed training configs: one dataclass per section, loadable from YAML with dotted overrides.

``TrainerConfig`` holds the *trainer sections*, the only ones the generic ``Trainer`` reads
(``optim, schedule, ema, checkpoint, logging`` plus ``seed``, ``mixed_precision`` and
``max_nonfinite_in_a_row``). Every recipe extends it with its own sections: ``TrainConfig``
(the tokenizer: ``model``, ``data``, ``loss``) here, ``DiTTrainConfig`` (``model``,
``diffusion``, ``data``, ``preview``) in ``textok.training.dit_task``. ``build_config(data,
overrides, cls)`` builds any of them: dotted overrides, then the ``model.preset`` named in
``cls.model_presets`` (``textok.config.apply_preset``), then ``cls.complete`` (fields a recipe
fills from elsewhere, e.g. the DiT's token shape from its latent cache), then typing and
``validate()``. A YAML config may extend another with ``base: other.yaml``
(``textok.config.load_yaml``).

Batch semantics: ``optim.batch_size`` is the **global** batch of one optimiser step, summed
over all processes and gradient-accumulation micro-steps. Each process runs micro-batches of
``batch_size // (num_processes * grad_accum_steps)`` images (which must divide exactly), so a
run gives the same update on 1 CPU, 8 GPUs or 8x8 GPUs, up to floating-point reduction order.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Literal

from ..config import ConfigError, apply_overrides, apply_preset, check_seed, from_dict, load_yaml, to_dict
from ..data.captions import CAPTION_VARIANTS, is_field_variant
from ..data.formats import BadSamplePolicy
from ..losses import LossConfig
from ..models.textok import PRESETS, TexTokConfig


@dataclasses.dataclass
class DataConfig:
    root: str = "data/emoji"  # a folder open_dataset reads (repo-relative paths resolve from the cwd)
    train_split: str = "train"
    val_split: str = "val"  # previews and the demo's evaluation; missing -> train
    augment: bool = True  # random crop (train=True in open_dataset); False -> the ADM centre crop
    flip: bool = False  # horizontal flips; off because captions may say "left"/"right"
    max_images: int | None = None  # use only the first N training images (tests, overfitting)
    num_workers: int = 0  # DataLoader workers per process
    use_text_cache: bool = True  # read text embeddings from the data set's cache when present
    caption_dropout: float = 0.0  # p of replacing a caption by "" (embedded by the same encoder)
    # condition richness (the paper's ablation): full | words25 | short | class | name (textok.data.captions)
    caption_variant: str = "full"
    on_bad_sample: BadSamplePolicy = "skip"  # skip | error (textok.data.formats.ON_BAD_SAMPLE)
    # WebDataset shards (root = a shard folder, a .tar or a pattern such as data/train-{000000..000127}.tar)
    # are streamed (textok.data.stream): samples in each reader's shuffle buffer
    shuffle_buffer: int = 1000
    # resuming a shard stream with other processes / num_workers: restart it at the next epoch (not exact)
    reshard_on_resume: bool = False
    # decode the training split once into one uint8 tensor (textok.data.InMemoryDataset): no per-step image
    # decoding or worker processes, the same batches as reading the files; for folders whose items are
    # deterministic (augment=false, flip=false) and that fit in memory (a few GB at most)
    in_memory: bool = False
    # > 0: batches of captions of similar length (the text is padded to a batch's longest caption): each
    # epoch's order is cut into windows of this many global batches, sorted by caption length within a
    # window, and the batches shuffled; every sample is still seen once per epoch. 0: off
    group_by_length: int = 0


@dataclasses.dataclass
class OptimConfig:
    batch_size: int = 256  # GLOBAL images per optimiser step (all processes x accumulation)
    grad_accum_steps: int = 1
    lr: float = 1e-4
    betas: tuple[float, float] = (0.0, 0.99)
    eps: float = 1e-8
    weight_decay: float = 0.0
    grad_clip: float = 1.0  # max global grad norm; 0 disables clipping
    critic_lr: float | None = None  # the discriminator's optimiser; None -> lr
    critic_betas: tuple[float, float] | None = None  # None -> betas
    # adamw: AdamW for every parameter. muon: torch.optim.Muon for the transformer blocks' weight matrices
    # (orthogonalised momentum, textok.training.optim), AdamW for the rest (embeddings, input and output
    # layers, norms, biases)
    optimizer: Literal["adamw", "muon"] = "adamw"
    muon_lr: float | None = None  # None -> lr (Muon's update is scaled to AdamW's RMS: lrs are comparable)
    muon_momentum: float = 0.95
    # Newton-Schulz iterations per Muon step (torch's and modded-nanogpt's 5); fewer cost less per step
    muon_ns_steps: int = 5
    # the Newton-Schulz polynomial: "quintic" (torch's and Muon's one quintic, every iteration) or "polar_express"
    # (a quintic per iteration, tuned to the singular values left: Polar Express, arXiv:2505.16932)
    muon_ns: Literal["quintic", "polar_express"] = "quintic"
    # which weights Muon takes: "blocks" (the transformer blocks' matrices, as Muon's authors use it) or
    # "matrices" (every nn.Linear weight: the input, output and text projections too)
    muon_scope: Literal["blocks", "matrices"] = "blocks"
    # with several processes, each orthogonalises a share of the matrices and one all_gather shares the
    # updates (modded-nanogpt's distributed Muon); the same updates, less Newton-Schulz time per process
    muon_shard: bool = False
    # AdamW's implementation: auto (torch's choice), foreach (one kernel per op over all tensors), fused
    # (one kernel for the whole step) or for-loop
    implementation: Literal["auto", "foreach", "fused", "for-loop"] = "auto"


@dataclasses.dataclass
class ScheduleConfig:
    max_steps: int = 1000  # optimiser steps (the training budget)
    warmup_steps: int = 100  # linear warm-up from 0 to lr
    min_lr_ratio: float = 0.0  # the decay ends at lr * min_lr_ratio at max_steps
    # cosine: from the end of warm-up to max_steps. constant: none. wsd (warmup-stable-decay): constant,
    # then linear over the last cooldown_steps; a constant-lr checkpoint resumes into it exactly, so one
    # constant trunk gives a cooled-down model at every budget
    decay: Literal["cosine", "constant", "wsd"] = "cosine"
    cooldown_steps: int = 0  # wsd only


@dataclasses.dataclass
class EMAConfig:
    decay: float = 0.999
    warmup: bool = True  # decay_t = min(decay, (1 + t) / (10 + t)): early EMA tracks the model
    every: int = 1  # update every k steps


@dataclasses.dataclass
class CheckpointConfig:
    every: int = 1000  # steps between checkpoints (a final one is always written)
    keep_last: int = 3


@dataclasses.dataclass
class LoggingConfig:
    log_every: int = 10  # TensorBoard scalars; without a progress bar also a log line (step, loss, rate)
    preview_every: int = 500  # a grid of originals vs reconstructions (0: only at the end)
    num_preview: int = 8
    tensorboard: bool = True
    progress: bool = True  # tqdm bar on the main process


@dataclasses.dataclass
class TrainerConfig:
    """The sections the generic ``Trainer`` reads, shared by every recipe (field names unchanged)."""

    optim: OptimConfig = dataclasses.field(default_factory=OptimConfig)
    schedule: ScheduleConfig = dataclasses.field(default_factory=ScheduleConfig)
    ema: EMAConfig = dataclasses.field(default_factory=EMAConfig)
    checkpoint: CheckpointConfig = dataclasses.field(default_factory=CheckpointConfig)
    logging: LoggingConfig = dataclasses.field(default_factory=LoggingConfig)
    seed: int = 0
    mixed_precision: Literal["auto", "no", "bf16"] = "auto"  # auto: bf16 on a GPU that supports it
    # torch.compile the trained model (fused kernels; the first steps compile, later shapes may recompile)
    compile: bool = False
    # how data-parallel processes average gradients: ddp (torch's DistributedDataParallel, the right choice on GPUs)
    # or shared_memory (CPU processes of one x86 machine: one exchange through /dev/shm after the backward pass,
    # textok.training.shared_memory; Muon's sharded updates go the same way)
    grad_sync: Literal["ddp", "shared_memory"] = "ddp"
    max_nonfinite_in_a_row: int = 20  # stop (with a checkpoint) after this many skipped steps in a row

    #: presets the ``model`` section may name (``model: {preset: NAME, ...}``); not a field
    model_presets = {}
    model_kind = "model"

    @classmethod
    def complete(cls, data: dict) -> dict:
        """Fill in, before typing, fields the recipe takes from elsewhere (default: none)."""
        return data

    def validate(self) -> None:
        """Check the values; errors name the field."""
        check_trainer_sections(self)


@dataclasses.dataclass
class TrainConfig(TrainerConfig):
    """The tokenizer recipe. Defaults follow the paper's (MAGVIT-v2 style) recipe."""

    model: TexTokConfig = dataclasses.field(default_factory=TexTokConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    loss: LossConfig = dataclasses.field(default_factory=LossConfig)

    model_presets = PRESETS
    model_kind = "TexTok"

    def validate(self) -> None:
        super().validate()
        d = self.data
        if not 0.0 <= d.caption_dropout <= 1.0:
            raise ConfigError(f"data.caption_dropout must lie in [0, 1], got {d.caption_dropout}")
        if d.caption_variant not in CAPTION_VARIANTS and not is_field_variant(d.caption_variant):
            raise ConfigError(f"data.caption_variant must be one of {CAPTION_VARIANTS} or a caption_<variant> field's "
                              f"name, got {d.caption_variant!r}")
        if d.shuffle_buffer < 0:
            raise ConfigError(f"data.shuffle_buffer must be >= 0, got {d.shuffle_buffer}")
        if d.max_images is not None and d.max_images < 1:
            raise ConfigError(f"data.max_images must be >= 1, got {d.max_images}")
        if d.group_by_length < 0:
            raise ConfigError(f"data.group_by_length must be >= 0 (0: off), got {d.group_by_length}")
        if d.in_memory and (d.augment or d.flip):
            raise ConfigError("data.in_memory=true keeps one decoded copy of each image: it needs data.augment=false "
                              "and data.flip=false (random crops and flips change the images every epoch)")


#: the largest learning rate a config may give (Adam's steps are about lr in size; 1e308 overflows)
MAX_LR = 10.0


#: Fields that may change between a checkpoint and its resumption (they do not change the math).
RESUME_MAY_DIFFER = ("checkpoint.", "logging.", "grad_sync", "optim.muon_shard",
                     "data.num_workers", "data.root", "data.reshard_on_resume",
                     "data.tokenizer")  # (a DiT run's: where its tokenizer is now, checked against the cache)


def check_trainer_sections(cfg: Any) -> None:
    """Validate the sections the generic Trainer reads; errors name the field."""
    o, s = cfg.optim, cfg.schedule
    for name, value in (("optim.batch_size", o.batch_size), ("optim.grad_accum_steps", o.grad_accum_steps),
                        ("schedule.max_steps", s.max_steps), ("checkpoint.every", cfg.checkpoint.every),
                        ("checkpoint.keep_last", cfg.checkpoint.keep_last), ("ema.every", cfg.ema.every)):
        if value < 1:
            raise ConfigError(f"{name} must be >= 1, got {value}")
    if o.batch_size % o.grad_accum_steps:
        raise ConfigError(f"optim.batch_size={o.batch_size} must be divisible by optim.grad_accum_steps={o.grad_accum_steps}")
    if s.warmup_steps < 0:
        raise ConfigError(f"schedule.warmup_steps must be >= 0, got {s.warmup_steps}")
    if s.decay == "wsd" and not 1 <= s.cooldown_steps <= s.max_steps - s.warmup_steps:
        raise ConfigError(f"schedule.decay=wsd needs 1 <= schedule.cooldown_steps <= max_steps - warmup_steps "
                          f"({s.max_steps - s.warmup_steps}), got {s.cooldown_steps}")
    if not 0.0 <= cfg.ema.decay < 1.0:
        raise ConfigError(f"ema.decay must lie in [0, 1), got {cfg.ema.decay}")
    for name, lr in (("optim.lr", o.lr), ("optim.critic_lr", o.critic_lr)):
        # above MAX_LR no Adam step means anything, and lr=1e308 overflows inside torch's AdamW
        if lr is not None and not 0 < lr <= MAX_LR:
            raise ConfigError(f"{name} must lie in (0, {MAX_LR:g}], got {lr}")
    if not 0.0 <= s.min_lr_ratio <= 1.0:  # a negative ratio trains with a negative learning rate
        raise ConfigError(f"schedule.min_lr_ratio must lie in [0, 1], got {s.min_lr_ratio}")
    if s.cooldown_steps < 0:
        raise ConfigError(f"schedule.cooldown_steps must be >= 0, got {s.cooldown_steps}")
    for name, betas in (("optim.betas", o.betas), ("optim.critic_betas", o.critic_betas)):
        if betas is not None and not all(0.0 <= b < 1.0 for b in betas):
            raise ConfigError(f"{name} must lie in [0, 1), got {list(betas)}")
    for name, value, low in (("optim.eps", o.eps, None), ("optim.weight_decay", o.weight_decay, 0.0),
                             ("optim.grad_clip", o.grad_clip, 0.0)):
        if (value <= 0) if low is None else (value < low):
            raise ConfigError(f"{name} must be {'positive' if low is None else f'>= {low:g}'}, got {value}")
    lg = cfg.logging
    if lg.log_every < 1:  # the trainer logs at step % log_every == 0
        raise ConfigError(f"logging.log_every must be >= 1, got {lg.log_every}")
    for name, value in (("logging.preview_every", lg.preview_every), ("logging.num_preview", lg.num_preview)):
        if value < 0:
            raise ConfigError(f"{name} must be >= 0 (0: none), got {value}")
    if cfg.max_nonfinite_in_a_row < 1:
        raise ConfigError(f"max_nonfinite_in_a_row must be >= 1, got {cfg.max_nonfinite_in_a_row}")
    check_seed(cfg.seed, "seed")
    if o.muon_lr is not None and not 0 < o.muon_lr <= MAX_LR:
        raise ConfigError(f"optim.muon_lr must lie in (0, {MAX_LR:g}], got {o.muon_lr}")
    if not 0.0 <= o.muon_momentum < 1.0:
        raise ConfigError(f"optim.muon_momentum must lie in [0, 1), got {o.muon_momentum}")
    if not 1 <= o.muon_ns_steps < 100:
        raise ConfigError(f"optim.muon_ns_steps must lie in [1, 100), got {o.muon_ns_steps}")


def build_config(data: dict, overrides: list[str] | None = None, cls: type = TrainConfig):
    """A typed config of recipe ``cls`` (a ``TrainerConfig``) from a nested dict (as in YAML)
    plus dotted ``overrides``.

    The model section may name a preset (``model: {preset: textok-mini-64, num_tokens: 16}``):
    the preset's fields are filled in first, then the explicit ones.
    """
    data = apply_overrides(data, list(overrides or []))
    if "model" in data:
        data["model"] = apply_preset(data["model"], cls.model_presets, cls.model_kind, where="model")
    data = cls.complete(data)
    try:
        cfg = from_dict(cls, data, where="config")
    except ValueError as e:  # TexTokConfig.__post_init__ checks raise ValueError naming the field
        raise ConfigError(str(e)) from None
    cfg.validate()
    return cfg


def load_config(path: str | os.PathLike, overrides: list[str] | None = None, cls: type = TrainConfig):
    """Read a YAML config and apply dotted overrides (``model.num_tokens=16``)."""
    return build_config(load_yaml(path), overrides, cls)


def baseline_of(cfg: TrainConfig) -> TrainConfig:
    """The no-text twin: everything identical except ``model.text_in="none"``."""
    return build_config(to_dict(cfg), ["model.text_in=none", "data.caption_dropout=0.0"])


__all__ = [
    "TrainerConfig", "TrainConfig", "DataConfig", "OptimConfig", "ScheduleConfig", "EMAConfig", "CheckpointConfig",
    "LoggingConfig", "LossConfig", "build_config", "load_config", "baseline_of", "check_trainer_sections",
    "RESUME_MAY_DIFFER",
]
