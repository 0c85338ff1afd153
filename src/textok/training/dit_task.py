"""The DiT task: train a DiT (or DiT-T2I) on a latent cache with the generic ``Trainer``.

    from textok.training.dit_task import load_dit_config, train_dit
    cfg = load_dit_config("configs/dit_fashion_mnist.yaml", ["schedule.max_steps=2000"])
    train_dit(cfg, "runs/dit-fmnist")        # -> runs/dit-fmnist/model/ (a generation folder)

The DiT reads only the cache written by ``textok encode-dataset`` (tokens normalised with the
cache's per-channel statistics); the loop, checkpoints, EMA, resume and logging are the
``Trainer``'s. Every random choice of a step (timesteps, noise, condition dropout, posterior
samples) is drawn from the step's ``rng``, so 1 and N processes train identically.
The saved ``model/`` folder is a self-contained generation folder: the EMA DiT, the tokenizer, the caption pool
and ``generation.json`` (see ``textok.generation``).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

import torch
import torch.nn as nn

from ..config import ConfigError
from ..conditioning import DIT_MAX_TEXT_TOKENS, TextConditioner, dropout_mask, encoder_width
from ..diffusion import DiffusionConfig, build_diffusion
from ..data.datasets import load_caption_pool
from ..generation import POOL_NAME, GenerationConfig, Pipeline, check_compatible, pool_by_label
from ..latents import LatentCache, cache_meta, collate_latents
from ..models.dit import DIT_PRESETS, DiT, DiTConfig
from ..models.textok import TexTok
from .config import EMAConfig, OptimConfig, ScheduleConfig, TrainerConfig, build_config, load_config
from .task import StepResult, index_loader, unwrap
from .trainer import Trainer

log = logging.getLogger(__name__)

@dataclasses.dataclass
class DiTDataConfig:
    cache: str = "runs/latents"  # latent cache folder (textok encode-dataset --out)
    max_items: int | None = None  # use only the first N cached images
    num_workers: int = 0
    use_text_cache: bool = True  # DiT-T2I: caption embeddings from the data set's text cache when present
    text_encoder: str = ""  # DiT-T2I's text encoder; "" = the tokenizer's (recorded in the cache)
    caption_pool: str | None = None  # class -> held-out captions; None: <data>/class_captions_heldout.json
    # the tokenizer folder the cache was encoded with; "" = the path the cache records (set it when the
    # tokenizer has moved since: previews and the generation folder decode with it)
    tokenizer: str = ""


@dataclasses.dataclass
class PreviewConfig:
    steps: int = 25  # sampler steps for the preview grids (DDIM / Euler / MeanFlow)
    cfg_scale: float = 1.5


def _dit_optim() -> OptimConfig:
    # DiT: AdamW, lr 1e-4, no weight decay, global batch 256
    return OptimConfig(batch_size=256, lr=1e-4, betas=(0.9, 0.999), weight_decay=0.0, grad_clip=1.0)


#: the DiT fields that describe the tokenizer's tokens (and the text encoder's width): a config
#: that leaves them out gets them from its latent cache
FROM_CACHE = ("num_tokens", "token_dim", "text_dim")


@dataclasses.dataclass
class DiTTrainConfig(TrainerConfig):
    """The DiT recipe (Peebles & Xie): constant lr 1e-4, EMA 0.9999, 1000-step Gaussian diffusion."""

    model: DiTConfig = dataclasses.field(default_factory=DiTConfig)
    diffusion: DiffusionConfig = dataclasses.field(default_factory=DiffusionConfig)
    data: DiTDataConfig = dataclasses.field(default_factory=DiTDataConfig)
    preview: PreviewConfig = dataclasses.field(default_factory=PreviewConfig)
    # the trainer sections with the DiT recipe's defaults
    optim: OptimConfig = dataclasses.field(default_factory=_dit_optim)
    schedule: ScheduleConfig = dataclasses.field(default_factory=lambda: ScheduleConfig(max_steps=400_000, warmup_steps=0, decay="constant"))
    ema: EMAConfig = dataclasses.field(default_factory=lambda: EMAConfig(decay=0.9999))

    model_presets = DIT_PRESETS
    model_kind = "DiT"

    @classmethod
    def complete(cls, data: dict) -> dict:
        """``model.num_tokens`` / ``token_dim`` (and ``text_dim`` for DiT-T2I) left out of the
        config are read from the latent cache (``cache.json``; the text encoder's width), when
        the cache exists; stated ones are checked against it by the task."""
        model = dict(data.get("model") or {})
        text = model.get("condition", DiTConfig.condition) == "text"
        missing = [k for k in FROM_CACHE if k not in model and (k != "text_dim" or text)]
        section = data.get("data") or {}
        try:
            meta = cache_meta(section.get("cache", DiTDataConfig.cache))
        except ValueError as e:
            raise ConfigError(f"data.cache: {e}") from None
        if not missing or meta is None:
            return data
        found = {"num_tokens": meta["num_tokens"], "token_dim": meta["token_dim"]}
        if "text_dim" in missing:
            found["text_dim"] = encoder_width(section.get("text_encoder") or meta["text_encoder"])
        return {**data, "model": {**model, **{k: found[k] for k in missing}}}

    def validate(self) -> None:
        super().validate()
        m, d = self.model, self.diffusion
        try:
            check_compatible(m, d)  # the sampler that will run the DiT (the pipeline checks the same)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        if self.preview.steps < 1:
            raise ConfigError(f"preview.steps must be >= 1, got {self.preview.steps}")
        if d.objective == "meanflow" and d.meanflow.cfg_scale != 1.0:
            dropout = {"class": m.class_dropout, "text": m.caption_dropout}.get(m.condition, 0.0)
            if dropout == 0:
                raise ConfigError(f"diffusion.meanflow.cfg_scale={d.meanflow.cfg_scale} trains guidance, which "
                                  f"needs a conditional DiT with condition dropout (model.condition={m.condition!r}, "
                                  f"dropout {dropout})")


def build_dit_config(data: dict, overrides: list[str] | None = None) -> DiTTrainConfig:
    """A ``DiTTrainConfig`` from a nested dict plus dotted overrides; ``model.preset`` names a
    DiT size (``dit-s/b/l/xl``, ``dit-mini``, ``dit-tiny``) whose fields the explicit ones override;
    the token shape left out is read from the latent cache (``DiTTrainConfig.complete``)."""
    return build_config(data, overrides, cls=DiTTrainConfig)


def load_dit_config(path: str | os.PathLike, overrides: list[str] | None = None) -> DiTTrainConfig:
    return load_config(path, overrides, cls=DiTTrainConfig)


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
            self._cache = LatentCache(self.config.data.cache)
            self._check_cache(self._cache)
        return self._cache

    def _check_cache(self, cache) -> None:
        """The config against the cache: a stated token shape (or text width) must match it."""
        m, where = self.config.model, self.config.data.cache
        try:
            check_compatible(m, tokens=(cache.meta["num_tokens"], cache.meta["token_dim"]),
                             tokens_from=f"the cache {where} holds")
        except ValueError as e:
            raise ConfigError(f"{e}, or leave them out of the config (they are then read from the cache)") from None
        if m.condition == "text":
            width = encoder_width(self.text_encoder_name)
            if m.text_dim != width:
                raise ConfigError(f"model.text_dim={m.text_dim}, but the text encoder {self.text_encoder_name!r} "
                                  f"gives {width}-wide embeddings: set model.text_dim={width}, or leave it out of "
                                  f"the config (it is then read from the encoder)")
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
        return collate_latents(items)

    def loader(self, dataset, sampler, device: torch.device):
        return index_loader(dataset, sampler, self.collate, self.config.data.num_workers, self.config.seed, device)

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

    @property
    def tokenizer_path(self) -> str:
        """The tokenizer the cache was encoded with (``data.tokenizer``, else the cache's record)."""
        return self.config.data.tokenizer or self.cache.meta["tokenizer"]

    def _check_tokenizer(self) -> None:
        """Before any step is trained: the tokenizer that previews and the generation folder need is a TexTok folder
        that makes the cache's tokens (a moved one would otherwise fail at the first preview, steps later)."""
        path, meta = Path(self.tokenizer_path), self.cache.meta
        where = "data.tokenizer" if self.config.data.tokenizer else f"the latent cache {self.config.data.cache}"
        try:
            tc = TexTok.load_config(path)
        except FileNotFoundError:
            raise ConfigError(f"{where} names the tokenizer {path}, which is not there (no config.json); previews and "
                              f"the generation folder decode with it: put it back, or set data.tokenizer=<its folder>"
                              ) from None
        made = (tc.num_tokens, tc.token_dim, tc.text_in)
        if made != (meta["num_tokens"], meta["token_dim"], meta.get("text_in", made[2])):
            raise ConfigError(f"the tokenizer {path} makes [{made[0]}, {made[1]}] tokens with text_in={made[2]!r}, but "
                              f"the latent cache {self.config.data.cache} holds [{meta['num_tokens']}, {meta['token_dim']}] "
                              f"tokens of text_in={meta.get('text_in')!r}: not the tokenizer it was encoded with")

    def setup(self, device: torch.device) -> None:
        self.device = torch.device(device)
        cache = self.cache  # validates the cache against the model config
        self._check_tokenizer()
        if self.config.model.condition == "text":
            d = self.config.data
            self.text = TextConditioner(self.text_encoder_name, DIT_MAX_TEXT_TOKENS, cache.meta["data"],
                                        d.use_text_cache).to(self.device)

    def tokenizer(self):
        if self._tokenizer is None:
            self._tokenizer = TexTok.from_pretrained(self.tokenizer_path, map_location=self.device)
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
            tokenizer=self.tokenizer_path, latent_mean=cache.mean.tolist(), latent_std=cache.std.tolist(),
            diffusion=self.config.diffusion, classes=cache.classes,
            caption_pool=str(Path(pool).resolve()) if pool else None, text_encoder=self.text_encoder_name)

    def training_pool(self) -> dict[int, list[str]]:
        """Every distinct cached (training) caption of each class, in order: the caption pool of
        a class-conditional DiT whose data set has no held-out pool."""
        pool: dict[int, dict[str, None]] = {}
        for y, caption in zip(self.cache.labels.tolist(), self.cache.captions):
            pool.setdefault(y, {})[caption] = None
        return {y: list(captions) for y, captions in pool.items()}

    def _pipeline(self, model: DiT, sampling: bool = True) -> Pipeline:
        """The generation pipeline of ``model``; builds, writes nothing. ``sampling``: hand it the
        task's text encoder where one was loaded, instead of letting it load its own."""
        config = self.generation_config()
        pool = pool_by_label(load_caption_pool(config.caption_pool), config.classes, config.caption_pool) \
            if config.caption_pool else None
        if pool is None and self.config.model.condition == "class":
            pool = self.training_pool()  # no pool file: the cached (training) captions stand in for it
        # the data set's text cache embeds the previews' captions as in training: no encoder to load
        encoder = self.text.loaded_encoder if self.text is not None and sampling else None
        text_data = self.cache.meta["data"] if self.config.data.use_text_cache else None
        return Pipeline(model, self.tokenizer(), config, pool, text_encoder=encoder, text_data=text_data)

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
        """The generation folder (``Pipeline.save_pretrained``: the DiT, the tokenizer, the caption pool); a
        class-conditional DiT whose data set has no caption pool file gets its training captions as the pool,
        and that is said."""
        pipe = self._pipeline(unwrap(model), sampling=False)
        if pipe.config.caption_pool is None and self.config.model.condition == "class":
            log.warning("no held-out caption pool in %s: sampling uses the TRAINING captions of each class "
                        "(written to %s)", self.cache.meta["data"], Path(directory) / POOL_NAME)
        pipe.save_pretrained(directory)


def train_dit(config: DiTTrainConfig, out_dir: str | os.PathLike, resume: bool = False, init_from=None):
    """Train a DiT on ``config.data.cache`` into ``out_dir`` with the generic ``Trainer``."""
    return Trainer(DiTTask(config), config, out_dir, resume=resume, init_from=init_from).train()


__all__ = ["DiTTask", "DiTTrainConfig", "DiTDataConfig", "PreviewConfig", "build_dit_config", "load_dit_config", "train_dit"]
