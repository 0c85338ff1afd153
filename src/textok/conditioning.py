"""Conditioning: the one way captions become the ``TextEmbedding`` a model sees.

Every command that feeds text to a TexTok or a DiT goes through this module: training
(``TokenizerTask``, ``DiTTask``), ``encode-dataset``, ``reconstruct``, ``eval-tokenizer``,
sampling (``Pipeline``), the demo and ``textok app``. What it fixes, once:

- **the encoder, by name** (``load_encoder``): ``"minilm"`` or a local Hugging Face folder,
  loaded once per (name, device) in a shared ``pool`` and viewed at each token budget;
- **the truncation rule**: a TexTok sees every caption cut at its ``max_text_tokens`` encoder
  tokens (``TextEncoder.cut_at``), in training and in every command that uses it;
- **the data set's text cache** (``textok embed-text``; read by ``textok.data.text_cache``) is
  used where it is exact: a cache cut at another token budget is exact only for captions
  neither budget cut (``cached_embedding``); otherwise the encoder runs;
- **the empty caption** ``""`` (embedded by the same encoder), which **caption dropout**
  substitutes with probability ``p``, drawn from a ``torch.Generator`` (``dropout_mask``);
- **one caption for a batch** (``broadcast``).

A TexTok with its captions -- encode / decode / reconstruct and choosing a caption for tokens that
have none -- is ``textok.CaptionedTokenizer`` (``textok.tokenizer``), which applies this rule.
This module sits below it and above ``textok.text`` and ``textok.data``; it imports no model and
nothing from ``textok.training``.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Sequence

import torch

from .data.text_cache import TextCache, load_text_cache
from .text import DEFAULT_MAX_TOKENS, KNOWN_ENCODERS, prepare_caption, TextEmbedding, TextEncoder

log = logging.getLogger(__name__)

#: the unconditional caption: caption dropout's substitute, a baseline's "no text"
EMPTY_CAPTION = ""
#: DiT-T2I prompts are embedded at the encoder's full budget (a DiT has no max_text_tokens)
DIT_MAX_TEXT_TOKENS = DEFAULT_MAX_TOKENS


# ---- the encoder ------------------------------------------------------------------------------
def load_encoder(name: str | os.PathLike = "minilm", device: str | torch.device = "cpu", max_tokens: int | None = None,
                 pool: dict | None = None) -> TextEncoder:
    """The frozen text encoder ``name`` on ``device``, cutting captions at ``max_tokens`` (default:
    the encoder's own budget). ``pool``: a dict shared by callers, keyed ``(name, device)``, so the
    weights load once (a ``TextEncoder`` put in under its key is reused, e.g. a test fixture)."""
    key = (str(name), str(torch.device(device)))
    encoder = pool.get(key) if pool is not None else None
    if encoder is None:
        encoder = TextEncoder.from_pretrained(name, device=device)
        if pool is not None:
            pool[key] = encoder
    return encoder if max_tokens is None else encoder.cut_at(max_tokens)


def encoder_width(name: str | os.PathLike) -> int:
    """The width of encoder ``name``'s embeddings, read from its ``config.json`` (no weights loaded)."""
    name = str(name)
    path = KNOWN_ENCODERS[name]() if name in KNOWN_ENCODERS else Path(name).expanduser()
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise FileNotFoundError(f"text encoder {name!r}: no readable config.json in {path} ({e})") from None
    width = config.get("hidden_size", config.get("d_model"))
    if not isinstance(width, int):
        raise ValueError(f"text encoder {name!r}: {path / 'config.json'} names no hidden_size / d_model")
    return width


# ---- the pieces of the rule -------------------------------------------------------------------
def broadcast(captions: Sequence[str], batch: int) -> list[str]:
    """One caption for every image of a batch, or one caption per image."""
    captions = list(captions)
    if len(captions) == 1:
        captions = captions * batch
    if len(captions) != batch:
        raise ValueError(f"got {len(captions)} captions for {batch} images: give one caption, or one per image")
    return captions


def cached_embedding(cache: TextCache | None, captions: Sequence[str], max_tokens: int) -> TextEmbedding | None:
    """The cache's embeddings of ``captions`` if they equal what the encoder gives at ``max_tokens``
    tokens, else None (no cache, a caption it lacks, or one cut at another budget).

    A cache cut at another token budget is exact only for captions neither budget cut: the
    longest caption must fit ``max_tokens`` and be shorter than the cache's own cut."""
    if cache is None or not all(c in cache for c in captions):
        return None
    text = cache(captions)
    if cache.max_tokens == max_tokens:
        return text
    longest = int(text.mask.sum(1).max())
    if longest > max_tokens or longest >= cache.max_tokens:
        return None
    return TextEmbedding(text.embeddings[:, :longest], text.mask[:, :longest])


def dropout_mask(n: int, p: float, generator: torch.Generator | None = None,
                 device: str | torch.device | None = None) -> torch.Tensor:
    """[n] bool, True with probability ``p`` (condition dropout), drawn from ``generator`` (on its
    device unless ``device`` is given): the same draws on 1 and N processes."""
    if device is None:
        device = generator.device if generator is not None else "cpu"
    return torch.rand(n, generator=generator, device=device) < p


# ---- captions -> embeddings -------------------------------------------------------------------
class TextConditioner:
    """Captions -> ``TextEmbedding`` at ``max_tokens`` tokens: the data set's text cache where it
    is exact, else the frozen encoder (loaded on first use).

    ``TextConditioner(encoder, max_tokens, data_root, use_cache)``; ``encoder`` is a name (or a
    folder) or an already loaded ``TextEncoder`` (cut at ``max_tokens``). ``cond(captions,
    dropout=p, rng=g)`` replaces each caption by the empty caption with probability ``p``.
    ``cache``: an already loaded ``TextCache`` of ``data_root`` (conditioners at several ``max_tokens``
    share one table instead of each loading it).
    """

    def __init__(self, encoder: str | os.PathLike | TextEncoder = "minilm", max_tokens: int = DEFAULT_MAX_TOKENS,
                 data_root: str | os.PathLike | None = None, use_cache: bool = True, pool: dict | None = None,
                 cache: TextCache | None = None):
        self.max_tokens = max_tokens
        self._encoder = encoder.cut_at(max_tokens) if isinstance(encoder, TextEncoder) else None
        self.name = encoder.name if isinstance(encoder, TextEncoder) else str(encoder)
        self.pool = pool
        self.cache: TextCache | None = cache if use_cache else None
        if use_cache and cache is None and data_root is not None:
            self.cache = load_text_cache(data_root, self.name)
            if self.cache is not None:
                log.info("text embeddings: cache in %s (%s)", data_root, self.name)
            else:  # not an error, but every batch then runs the encoder (most of a small DiT-T2I step on a CPU)
                log.warning("text embeddings: no cache for %s in %s, so the encoder embeds every batch's captions; "
                            "`textok embed-text --data %s` caches them once", self.name, data_root, data_root)
        self._empty: TextEmbedding | None = None
        self.device = torch.device("cpu")

    @classmethod
    def for_tokenizer(cls, config, data_root: str | os.PathLike | None = None, use_cache: bool = True,
                      encoder: str | TextEncoder | None = None, pool: dict | None = None) -> "TextConditioner | None":
        """The conditioner of a TexTok with ``config`` (its encoder, its ``max_text_tokens``); None
        for the no-text baseline."""
        if config.text_in == "none":
            return None
        return cls(encoder if encoder is not None else config.text_encoder, config.max_text_tokens, data_root,
                   use_cache, pool)

    @property
    def loaded_encoder(self) -> TextEncoder | None:
        """The text encoder if it was loaded (a caption the cache lacked), else None."""
        return self._encoder

    def encoder(self) -> TextEncoder:
        if self._encoder is None:
            self._encoder = load_encoder(self.name, self.device, self.max_tokens, self.pool)
        return self._encoder

    def to(self, device: str | torch.device) -> "TextConditioner":
        self.device = torch.device(device)
        if self._encoder is not None:
            self._encoder.to(self.device)
        if self._empty is not None:
            self._empty = self._empty.to(self.device)
        return self

    def embed(self, captions: Sequence[str]) -> TextEmbedding:
        """``captions`` (no dropout) -> ``TextEmbedding`` on this conditioner's device."""
        captions = list(captions)
        text = cached_embedding(self.cache, captions, self.max_tokens)
        if text is None:  # no cache, a caption it lacks, or one cut at another budget
            text = self.encoder()(captions)
        return text.to(self.device)

    def token_lengths(self, captions: Sequence[str]) -> list[int]:
        """How many text tokens each caption takes at ``max_tokens`` (what a batch is padded to the longest
        of): read from the cache where it holds the caption, else counted by the encoder's tokenizer."""
        out = []
        for c in captions:
            i = self.cache.index.get(prepare_caption(c, self.cache.max_words)) if self.cache is not None else None
            if i is not None:
                out.append(min(self.cache.offsets[i + 1] - self.cache.offsets[i], self.max_tokens))
            else:
                enc = self.encoder()
                ids = enc.tokenizer(prepare_caption(c, enc.max_words), truncation=True, max_length=self.max_tokens)
                out.append(len(ids["input_ids"]))
        return out

    def empty(self) -> TextEmbedding:
        """The empty caption's embedding [1, L, C] (computed once)."""
        if self._empty is None:
            self._empty = self.embed([EMPTY_CAPTION])
        return self._empty

    def __call__(self, captions: Sequence[str], dropout: float = 0.0, rng: torch.Generator | None = None) -> TextEmbedding:
        text = self.embed(captions)
        if dropout <= 0:
            return text
        drop = dropout_mask(len(text), dropout, rng)
        if not drop.any():
            return text
        empty = self.empty()
        return TextEmbedding.cat([empty if d else text[i] for i, d in enumerate(drop.tolist())])


__all__ = [
    "TextConditioner", "load_encoder", "encoder_width", "broadcast", "cached_embedding", "dropout_mask",
    "EMPTY_CAPTION", "DIT_MAX_TEXT_TOKENS", "TextEmbedding",
]
