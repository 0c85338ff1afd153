"""The DiT task: train a DiT (or DiT-T2I) on a latent cache with the generic ``Trainer``.

    from textok.training.dit_task import load_dit_config, train_dit
    cfg = load_dit_config("configs/dit_fashion_mnist.yaml", ["schedule.max_steps=2000"])
    train_dit(cfg, "runs/dit-fmnist")        # -> runs/dit-fmnist/model/ (a generation folder)

The DiT reads only the cache written by ``textok encode-dataset`` (tokens normalised with the
cache's per-channel statistics); the loop, checkpoints, EMA, resume and logging are the
``Trainer``'s. Every random choice of a step (timesteps, noise, condition dropout, posterior
samples) is drawn from the step's ``rng``, so 1 and N processes train identically.
The saved ``model/`` folder is the EMA DiT plus ``generation.json`` (see ``textok.generation``).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Literal

import torch
import torch.nn as nn

from ..config import ConfigError, apply_overrides, load_yaml
from ..diffusion import DiffusionConfig, build_diffusion
from ..models.dit import DIT_PRESETS, DiT, DiTConfig
from .config import CheckpointConfig, EMAConfig, LoggingConfig, OptimConfig, ScheduleConfig, build_config
from ..conditioning import DIT_MAX_TEXT_TOKENS, TextConditioner, dropout_mask
from .task import StepResult, unwrap

log = logging.getLogger(__name__)


@dataclasses.dataclass
class DiTDataConfig:
    cache: str = "runs/latents"  # latent cache folder (textok encode-dataset --out)
    max_items: int | None = None  # use only the first N cached images
    num_workers: int = 0
    use_text_cache: bool = True  # DiT-T2I: caption embeddings from the data set's text cache when present
    text_encoder: str = ""  # DiT-T2I's text encoder; "" = the tokenizer's (recorded in the cache)
    caption_pool: str | None = None  # class -> held-out captions; None: <data>/class_captions_heldout.json


@dataclasses.dataclass
class PreviewConfig:
    steps: int = 25  # sampler steps for the preview grids (DDIM / Euler / MeanFlow)
    cfg_scale: float = 1.5


def _dit_optim() -> OptimConfig:
    # DiT: AdamW, lr 1e-4, no weight decay, global batch 256
    return OptimConfig(batch_size=256, lr=1e-4, betas=(0.9, 0.999), weight_decay=0.0, grad_clip=1.0)


@dataclasses.dataclass
class DiTTrainConfig:
    """The DiT recipe (Peebles & Xie): constant lr 1e-4, EMA 0.9999, 1000-step Gaussian diffusion."""

    model: DiTConfig = dataclasses.field(default_factory=DiTConfig)
    diffusion: DiffusionConfig = dataclasses.field(default_factory=DiffusionConfig)
    data: DiTDataConfig = dataclasses.field(default_factory=DiTDataConfig)
    preview: PreviewConfig = dataclasses.field(default_factory=PreviewConfig)
    optim: OptimConfig = dataclasses.field(default_factory=_dit_optim)
    schedule: ScheduleConfig = dataclasses.field(default_factory=lambda: ScheduleConfig(max_steps=400_000, warmup_steps=0, decay="constant"))
    ema: EMAConfig = dataclasses.field(default_factory=lambda: EMAConfig(decay=0.9999))
    checkpoint: CheckpointConfig = dataclasses.field(default_factory=CheckpointConfig)
    logging: LoggingConfig = dataclasses.field(default_factory=LoggingConfig)
    seed: int = 0
    mixed_precision: Literal["auto", "no", "bf16"] = "auto"
    max_nonfinite_in_a_row: int = 20


def build_dit_config(data: dict, overrides: list[str] | None = None) -> DiTTrainConfig:
    """A ``DiTTrainConfig`` from a nested dict plus dotted overrides; ``model.preset`` names a
    DiT size (``dit-s/b/l/xl``, ``dit-mini``, ``dit-tiny``) whose fields the explicit ones override."""
    data = apply_overrides(data, list(overrides or []))
    model = data.get("model")
    if isinstance(model, dict) and "preset" in model:
        model = dict(model)
        preset = model.pop("preset")
        if preset not in DIT_PRESETS:
            raise ConfigError(f"model.preset: unknown DiT preset {preset!r}; presets: {sorted(DIT_PRESETS)}")
        data["model"] = {**DIT_PRESETS[preset], **model}
    cfg = build_config(data, [], cls=DiTTrainConfig)
    if cfg.diffusion.learned_variance != cfg.model.learn_sigma:
        raise ConfigError(f"diffusion.learned_variance={cfg.diffusion.learned_variance} must equal "
                          f"model.learn_sigma={cfg.model.learn_sigma} (2d output channels iff the variance is learned)")
    if cfg.preview.steps < 1:
        raise ConfigError(f"preview.steps must be >= 1, got {cfg.preview.steps}")
    meanflow = cfg.diffusion.objective == "meanflow"
    if meanflow != (cfg.model.time_inputs == 2):
        raise ConfigError(f"diffusion.objective={cfg.diffusion.objective!r} needs model.time_inputs={2 if meanflow else 1} "
                          f"(got {cfg.model.time_inputs}): MeanFlow's DiT embeds t and t - r, the others only t")
    if meanflow and cfg.diffusion.meanflow.cfg_scale != 1.0:
        dropout = {"class": cfg.model.class_dropout, "text": cfg.model.caption_dropout}.get(cfg.model.condition, 0.0)
        if dropout == 0:
            raise ConfigError(f"diffusion.meanflow.cfg_scale={cfg.diffusion.meanflow.cfg_scale} trains guidance, which "
                              f"needs a conditional DiT with condition dropout (model.condition={cfg.model.condition!r}, "
                              f"dropout {dropout})")
    return cfg


def load_dit_config(path: str | os.PathLike, overrides: list[str] | None = None) -> DiTTrainConfig:
    return build_dit_config(load_yaml(path), overrides)


class DiTTask:
    """Implements ``textok.training.task.Task`` for a DiT on a ``LatentCache``."""

    def __init__(self, config: DiTTrainConfig):
        self.config = config
        self.diffusion = build_diffusion(config.diffusion)
        self._cache = None
        self._tokenizer = None
        self.text: TextConditioner | None = None
        self.device = torch.device("cpu")

    # ---- data ---------------------------------------------------------------------------
    @property
    def cache(self):
        if self._cache is None:
            from ..latents import LatentCache

            self._cache = LatentCache(self.config.data.cache)
            self._check_cache(self._cache)
        return self._cache

    def _check_cache(self, cache) -> None:
        m, where = self.config.model, self.config.data.cache
        N, d = cache.meta["num_tokens"], cache.meta["token_dim"]
        if (m.num_tokens, m.token_dim) != (N, d):
            raise ConfigError(f"model.num_tokens/token_dim = {m.num_tokens}/{m.token_dim}, but the cache {where} "
                              f"holds [{N}, {d}] tokens: set model.num_tokens={N} model.token_dim={d}")
        if m.condition == "class":
            if int(cache.labels.min()) < 0:
                raise ConfigError(f"model.condition='class' but the cache {where} has unlabelled images (label -1)")
            if cache.num_classes > m.num_classes:
                raise ConfigError(f"model.num_classes={m.num_classes}, but the cache {where} has {cache.num_classes} classes")

    @property
    def text_encoder_name(self) -> str:
        return self.config.data.text_encoder or self.cache.meta["text_encoder"]

    def train_dataset(self):
        ds, n = self.cache, self.config.data.max_items
        return ds if n is None or n >= len(ds) else torch.utils.data.Subset(ds, range(n))

    def collate(self, items: list[dict]) -> dict:
        from ..latents import collate_latents

        return collate_latents(items)

    def num_samples(self, batch: dict) -> int:
        return batch["labels"].shape[0]

    def preview_batch(self, n: int) -> dict | None:
        m = self.config.model
        if m.condition == "text":
            captions = list(dict.fromkeys(self.cache.captions))[:n]
            return {"labels": torch.zeros(len(captions), dtype=torch.long), "captions": captions}
        labels = torch.arange(n) % (m.num_classes if m.condition == "class" else 1)
        return {"labels": labels, "captions": [""] * n}

    # ---- models -------------------------------------------------------------------------
    def build_model(self) -> DiT:
        return DiT(self.config.model)

    def build_critic(self) -> nn.Module | None:
        return None

    def setup(self, device: torch.device) -> None:
        self.device = torch.device(device)
        cache = self.cache  # validates the cache against the model config
        if self.config.model.condition == "text":
            d = self.config.data
            self.text = TextConditioner(self.text_encoder_name, DIT_MAX_TEXT_TOKENS, cache.meta["data"],
                                        d.use_text_cache).to(self.device)

    def tokenizer(self):
        if self._tokenizer is None:
            from ..models.textok import TexTok

            self._tokenizer = TexTok.from_pretrained(self.cache.meta["tokenizer"], map_location=self.device)
        return self._tokenizer

    # ---- the loss -----------------------------------------------------------------------
    def latents(self, batch: dict, rng: torch.Generator | None) -> torch.Tensor:
        """Normalised x_0 [B, N, d]: the cached mode, or a posterior sample for a moments cache."""
        if "tokens" in batch:
            z = batch["tokens"]
        else:
            noise = torch.randn(batch["mean"].shape, generator=rng, device=batch["mean"].device)
            z = batch["mean"] + torch.exp(0.5 * batch["logvar"]) * noise
        return self.cache.normalize(z.float())

    def generator_loss(self, model, batch, step: int, rng: torch.Generator) -> StepResult:
        m = self.config.model
        x0 = self.latents(batch, rng)
        B = x0.shape[0]
        labels = text = drop = None
        if m.condition == "class":
            labels = batch["labels"]
            drop = dropout_mask(B, m.class_dropout, rng, x0.device)
        elif m.condition == "text":
            text = self.text.embed(batch["captions"])  # dropout: the DiT's learned null caption, below
            drop = dropout_mask(B, m.caption_dropout, rng, x0.device)

        def model_fn(x, t, r=None):
            return model(x, t, labels=labels, text=text, drop=drop, r=r)

        extra = {}
        if self.config.diffusion.objective == "meanflow":
            # the target's stop-gradient passes (JVP, unconditional velocity) skip the DDP wrapper
            net = unwrap(model)
            null = torch.ones(B, dtype=torch.bool, device=x0.device)
            extra = dict(target_model=lambda x, t, r: net(x, t, labels=labels, text=text, drop=drop, r=r),
                         uncond_model=lambda x, t, r: net(x, t, labels=labels, text=text, drop=null, r=r),
                         guide=None if drop is None else ~drop)
        terms = self.diffusion.training_losses(model_fn, x0, generator=rng, **extra)
        logs = {k: float(v.detach().mean()) for k, v in terms.items() if k != "loss"}
        return StepResult(terms["loss"].mean(), logs)

    def critic_loss(self, critic, batch, aux, step: int) -> StepResult | None:
        return None

    # ---- outputs ------------------------------------------------------------------------
    def generation_config(self):
        from ..generation import GenerationConfig

        cache = self.cache
        pool = self.config.data.caption_pool
        if pool is None:
            data = Path(cache.meta["data"])
            for name in ("class_captions_heldout.json", "class_captions.json"):
                if (data / name).is_file():
                    pool = str(data / name)
                    if name == "class_captions.json":  # samples are meant to be decoded with unseen captions
                        log.warning("%s: no class_captions_heldout.json; sampling uses the TRAINING captions of "
                                    "class_captions.json as the caption pool (set data.caption_pool to choose)", data)
                    break
        elif not Path(pool).is_file():
            raise FileNotFoundError(f"data.caption_pool: {pool} does not exist")
        return GenerationConfig(
            tokenizer=cache.meta["tokenizer"], latent_mean=cache.mean.tolist(), latent_std=cache.std.tolist(),
            diffusion=self.config.diffusion, classes=cache.classes,
            caption_pool=str(Path(pool).resolve()) if pool else None, text_encoder=self.text_encoder_name)

    def _pipeline(self, model: DiT, directory: Path | None = None):
        from ..generation import Pipeline, load_caption_pool

        config = self.generation_config()
        pool = load_caption_pool(config.caption_pool, config.classes) if config.caption_pool else None
        if pool is None and self.config.model.condition == "class":
            # no pool file: the cached (training) captions of each class stand in for it
            pool = {}
            for y, caption in zip(self.cache.labels.tolist(), self.cache.captions):
                pool.setdefault(y, {})[caption] = None  # every distinct caption of the class, in order
            pool = {y: list(captions) for y, captions in pool.items()}
            if directory is not None:
                from ..io import write_json_atomic

                names = config.classes
                write_json_atomic(directory / "caption_pool.json",
                                  {(names[y] if y < len(names) else str(y)): c for y, c in sorted(pool.items())})
                config.caption_pool = "caption_pool.json"
                log.warning("no held-out caption pool in %s: sampling uses the TRAINING captions of each class "
                            "(written to %s)",
                            self.cache.meta["data"], directory / "caption_pool.json")
        encoder = self.text.encoder() if self.text is not None and directory is None else None  # previews: reuse it
        return Pipeline(model, self.tokenizer(), config, pool, text_encoder=encoder)

    @torch.no_grad()
    def preview(self, model, batch) -> tuple[torch.Tensor, int]:
        model = unwrap(model)
        was_training = model.training
        p = self.config.preview
        pipe = self._pipeline(model)
        sampler = {"gaussian": "ddim", "flow": "euler"}.get(self.config.diffusion.objective,
                                                          self.config.diffusion.default_sampler)
        labels = batch["labels"].tolist()
        if self.config.model.condition == "text":
            images = pipe(prompts=batch["captions"], cfg_scale=p.cfg_scale, steps=p.steps, sampler=sampler, seed=0)
        else:
            images = pipe(labels=labels, cfg_scale=p.cfg_scale, steps=p.steps, sampler=sampler, seed=0)
        model.train(was_training)
        n = images.shape[0]
        return images.float().cpu(), min(n, 8)

    def save_model(self, model, directory) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self._pipeline(unwrap(model), directory).save_pretrained(directory)


def train_dit(config: DiTTrainConfig, out_dir: str | os.PathLike, resume: bool = False, init_from=None):
    """Train a DiT on ``config.data.cache`` into ``out_dir`` with the generic ``Trainer``."""
    from .trainer import Trainer

    return Trainer(DiTTask(config), config, out_dir, resume=resume, init_from=init_from).train()


__all__ = ["DiTTask", "DiTTrainConfig", "DiTDataConfig", "PreviewConfig", "build_dit_config", "load_dit_config", "train_dit"]
