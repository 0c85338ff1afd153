"""What a training task tells the generic ``Trainer``, and the tokenizer task.

The ``Trainer`` owns the loop: devices and processes (Accelerate), the data order, gradient
accumulation, optimisers, the learning-rate schedule, clipping, EMA, non-finite handling,
checkpoints and resume, logging. A *task* owns the science: which models exist, what a batch
is, and what the losses are. A task implements:

``build_model() -> nn.Module``
    The trained model (the "generator"). It is tracked by EMA; the EMA copy is what gets saved
    for inference. Called once under ``torch.manual_seed(config.seed)`` on every process.
``build_critic() -> nn.Module | None``
    An optional second model with its own optimiser (a GAN discriminator). Its parameters with
    ``requires_grad=True`` are optimised; frozen ones (e.g. LPIPS's VGG) are neither optimised
    nor checkpointed. Its floating-point buffers (e.g. LeCAM anchors) are averaged over
    processes after each critic step and are checkpointed. ``None``: no critic step at all.
``setup(device)``
    Move helpers that are not trained (loss networks, text encoders) to ``device``.
``train_dataset() -> Dataset`` and ``preview_batch(n) -> dict``
    A map-style dataset (the Trainer's sampler picks indices, so resume is exact), or a
    ``textok.data.stream.ShardStream`` (WebDataset shards, streamed as a function of the step,
    also exact), and a fixed batch for the preview grids. ``collate(items) -> dict`` turns items into a batch; tensors
    in the batch are moved to the device by the Trainer.
``loader(dataset, sampler, device) -> iterable of batches``
    The batches of a map-style dataset in the order the Trainer's ``sampler`` gives (lists of
    ``(index, item_seed)``; the order is the Trainer's, so resume stays exact): ``index_loader``
    does it for both tasks (by indexing for an in-memory data set, else a ``DataLoader``).
``generator_loss(model, batch, step, rng) -> StepResult``
    Forward one micro-batch through ``model`` (possibly DDP-wrapped; ``unwrap(model)`` gives
    the module) and return the loss to minimise, float logs and ``aux`` handed to the critic.
    ``rng`` is a ``torch.Generator`` on the device seeded from (seed, step, position of this
    micro-batch in the global batch): use it for every random choice (caption dropout,
    posterior noise) so that 1 process and N processes draw the same numbers.
``critic_loss(critic, batch, aux, step) -> StepResult | None``
    The critic's loss on the same micro-batch; ``None`` skips the critic step (e.g. before the
    discriminator starts).
``preview(model, batch) -> (images [K, 3, H, W], nrow)``
    Images for a grid, e.g. originals above reconstructions, from the EMA model in eval mode.
    Must not consume global RNG.
``save_model(model, directory)``
    Write the inference folder (``save_pretrained``).

``TokenizerTask`` is the tokenizer implementation; the DiT task follows the same protocol.
"""

from __future__ import annotations

import logging
from typing import Any, NamedTuple, Protocol

import torch
import torch.nn as nn

from ..conditioning import TextConditioner
from ..data.datasets import collate
from ..data.memory import InMemoryDataset
from ..data.stream import data_home, is_pattern, open_split
from ..losses import TexTokLoss
from ..models.textok import TexTok
from ..text import TextEmbedding
from ..tokenizer import CaptionedTokenizer
from .config import TrainConfig

log = logging.getLogger(__name__)


class StepResult(NamedTuple):
    loss: torch.Tensor  # scalar to minimise
    logs: dict[str, float]
    aux: Any = None  # passed to critic_loss (e.g. detached reconstructions)


class Task(Protocol):
    config: Any

    def build_model(self) -> nn.Module: ...
    def build_critic(self) -> nn.Module | None: ...
    def setup(self, device: torch.device) -> None: ...
    def train_dataset(self) -> torch.utils.data.Dataset: ...
    def loader(self, dataset, sampler, device: torch.device): ...
    def preview_batch(self, n: int) -> dict | None: ...
    def collate(self, items: list[dict]) -> dict: ...
    def generator_loss(self, model: nn.Module, batch: dict, step: int, rng: torch.Generator) -> StepResult: ...
    def critic_loss(self, critic: nn.Module, batch: dict, aux: Any, step: int) -> StepResult | None: ...
    def preview(self, model: nn.Module, batch: dict) -> tuple[torch.Tensor, int]: ...
    def save_model(self, model: nn.Module, directory) -> None: ...


def index_loader(dataset, sampler, collate, num_workers: int, seed: int, device: torch.device):
    """Batches of a map-style ``dataset`` in ``sampler``'s order (lists of ``(index, item_seed)``): an
    in-memory data set (``textok.data.InMemoryDataset``) is batched by indexing, without workers; any other
    is read by a ``DataLoader`` whose items are reseeded per item (``SeededItems``), so a resumed run
    sees the augmentations an uninterrupted one would."""
    if hasattr(dataset, "batch"):
        return (dataset.batch([i for i, _ in micro]) for micro in sampler)
    from ..data.stream import ignore_interrupts
    from .sampler import SeededItems

    # own generator: worker seeds must not consume the global RNG (that would break exact resume)
    return torch.utils.data.DataLoader(
        SeededItems(dataset), batch_sampler=sampler, collate_fn=collate, num_workers=num_workers,
        generator=torch.Generator().manual_seed(seed), pin_memory=device.type == "cuda",
        worker_init_fn=ignore_interrupts if num_workers else None)


def sample_captions(dataset) -> list[str | None]:
    """The caption of each index of a map-style data set, read without decoding images (a data set
    that draws captions at random gives its evaluation caption; a bad sample of an in-memory one, None)."""
    if isinstance(dataset, torch.utils.data.Subset):
        inner = sample_captions(dataset.dataset)
        return [inner[i] for i in dataset.indices]
    if isinstance(dataset, InMemoryDataset):
        return list(dataset.captions)
    return [dataset.eval_caption(i) for i in range(len(dataset))]


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a DDP / compiled wrapper."""
    while hasattr(model, "module") or hasattr(model, "_orig_mod"):
        model = getattr(model, "module", None) or model._orig_mod
    return model


class TokenizerTask:
    """Train TexTok (or the no-text baseline, ``model.text_in="none"``) with ``TexTokLoss``."""

    def __init__(self, config: TrainConfig):
        self.config = config
        self.loss = None
        self.text = None

    # ---- models -------------------------------------------------------------------------
    def build_model(self) -> TexTok:
        return TexTok(self.config.model)

    def build_critic(self) -> nn.Module | None:
        self.loss = TexTokLoss(self.config.loss, image_size=self.config.model.image_size)
        # With no adversarial term the discriminator is never used: no critic step, no optimiser.
        return self.loss if self.config.loss.adversarial_weight > 0 else None

    def setup(self, device: torch.device) -> None:
        if self.loss is None:
            self.build_critic()
        self.loss.to(device)
        c = self.config
        self.text = TextConditioner.for_tokenizer(c.model, c.data.root, c.data.use_text_cache)
        if self.text is not None:
            self.text.to(device)

    # ---- data ---------------------------------------------------------------------------
    def train_dataset(self):
        c = self.config
        ds = open_split(c.data.root, c.data.train_split, c.model.image_size, c.data.augment, c.data.flip, c.seed,
                        c.data.on_bad_sample, c.data.caption_variant, c.data.shuffle_buffer)
        if getattr(ds, "is_stream", False):
            if c.data.max_images is not None:
                raise ValueError(f"data.max_images is for image folders; with shards ({c.data.root}) name fewer "
                                 f"shards instead (a pattern such as train-{{000000..000003}}.tar)")
            return ds
        if c.data.max_images is not None and c.data.max_images < len(ds):
            ds = torch.utils.data.Subset(ds, range(c.data.max_images))
        if c.data.in_memory:
            ds = InMemoryDataset(ds, progress=c.logging.progress, where=f"{c.data.root} [{c.data.train_split}]")
        return ds

    def loader(self, dataset, sampler, device: torch.device):
        return index_loader(dataset, sampler, self.collate, self.config.data.num_workers, self.config.seed, device)

    def sample_lengths(self, dataset) -> list[int] | None:
        """Text tokens of each training sample's caption (``data.group_by_length`` groups batches by it);
        None for a model that reads no text."""
        if self.text is None:
            return None
        return self.text.token_lengths([c or "" for c in sample_captions(dataset)])

    def preview_batch(self, n: int) -> dict | None:
        c = self.config
        try:  # a shard pattern names training shards: the val split is looked for in their folder
            val_root = str(data_home(c.data.root)) if is_pattern(c.data.root) else c.data.root
            ds = open_split(val_root, c.data.val_split, c.model.image_size, False, False, c.seed, c.data.on_bad_sample,
                            c.data.caption_variant)
        except (FileNotFoundError, ValueError):
            ds = open_split(c.data.root, c.data.train_split, c.model.image_size, False, False, c.seed, c.data.on_bad_sample,
                            c.data.caption_variant)
        if getattr(ds, "is_stream", False):  # shards: the first n images, in the shards' order
            return self.collate(ds.head(n))
        picks = torch.linspace(0, len(ds) - 1, min(n, len(ds))).long().tolist()  # spread over the split
        return self.collate([ds[i] for i in picks])

    def collate(self, items: list[dict | None]) -> dict:
        batch = collate(items)  # skipped (bad) items are dropped: the batch may be smaller
        if batch is None:  # every one was bad: an empty batch, which the Trainer counts and passes over
            size = self.config.model.image_size
            batch = {"images": torch.zeros(0, 3, size, size), "captions": [], "labels": torch.zeros(0, dtype=torch.long),
                     "keys": []}
        return batch

    # ---- losses -------------------------------------------------------------------------
    def condition(self, captions: list[str], rng: torch.Generator | None = None, dropout: float = 0.0) -> TextEmbedding | None:
        return None if self.text is None else self.text(captions, dropout, rng)

    def generator_loss(self, model, batch, step: int, rng: torch.Generator) -> StepResult:
        images = batch["images"]
        text = self.condition(batch["captions"], rng, self.config.data.caption_dropout)
        out = model(images, text, generator=rng)
        last_layer = unwrap(model).to_pixels.weight if self.config.loss.adaptive_weight else None
        loss, logs = self.loss.generator_loss(images, out, step, last_layer=last_layer)
        return StepResult(loss, logs, out.reconstruction.detach())

    def critic_loss(self, critic, batch, aux, step: int) -> StepResult | None:
        if step < self.config.loss.discriminator_start:
            return None
        loss, logs = critic.discriminator_loss(batch["images"], aux, step)
        return StepResult(loss, logs)

    # ---- outputs ------------------------------------------------------------------------
    @torch.no_grad()
    def preview(self, model, batch) -> tuple[torch.Tensor, int]:
        model = unwrap(model)
        was_training = model.training
        model.eval()
        images = batch["images"]
        rec = CaptionedTokenizer(model, self.text).reconstruct(images, batch["captions"])
        model.train(was_training)
        return torch.cat([images, rec]).float().cpu(), images.shape[0]

    def save_model(self, model, directory) -> None:
        unwrap(model).save_pretrained(directory)


__all__ = ["Task", "TokenizerTask", "StepResult", "unwrap", "open_split", "index_loader"]
