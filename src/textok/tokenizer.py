"""``CaptionedTokenizer``: a TexTok with its captions, the object every command uses.

    from textok import CaptionedTokenizer
    tok = CaptionedTokenizer.from_pretrained("src/textok/pretrained/emoji32-textok-n4")  # or "org/name" on the Hub
    tokens = tok.encode(images, ["grinning face"])       # [B, 3, H, W] in [-1, 1] -> [B, N, d]
    images = tok.decode(tokens, ["grinning face"])       # -> [B, 3, H, W] in [-1, 1]
    images = tok.reconstruct(images, captions)           # encode then decode with the same captions

It holds the ``TexTok`` model and its text condition: the frozen text encoder named in the model's
config (``text_encoder``), loaded on first use, with the rule of ``textok.conditioning`` -- captions
cut at the model's ``max_text_tokens`` encoder tokens, the data set's text cache where it is exact,
one caption broadcast over a batch. The no-text baseline (``text_in="none"``) is the same object and
ignores captions; a model with text on one side only embeds captions for that side only.

A tokenizer folder is ``config.json`` + ``model.safetensors`` (``save_pretrained``); ``from_pretrained``
takes such a folder or a Hugging Face Hub repo id (``textok.hub``: safetensors only, ``HF_HUB_OFFLINE``
honoured), and ``push_to_hub`` uploads one.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable, Sequence

import torch

from .conditioning import TextConditioner, broadcast
from .hub import push_folder, resolve_folder
from .models.modules.posterior import DiagonalGaussian
from .models.textok import TexTok, TexTokConfig
from .text import TextEmbedding, TextEncoder

#: anything that embeds captions: a ``TextConditioner``, or a callable such as a ``TextCache``
Embedder = Callable[[Sequence[str]], TextEmbedding]
#: one caption per image, one caption for the batch, or captions already embedded (as training embedded them)
Captions = Sequence[str] | str | TextEmbedding | None


class CaptionedTokenizer:
    """A TexTok tokenizer/detokenizer together with the text encoder and rule its captions go through.

    ``CaptionedTokenizer(model, text=None, data_root=None, use_cache=True, pool=None)``:

    - ``model``: a ``TexTok`` (kept on its device; ``to(device)`` moves it and the text encoder);
    - ``text``: how captions become the model's ``TextEmbedding``. None (default): the model's own
      encoder by name (``config.text_encoder``, cut at ``config.max_text_tokens``), loaded on first
      use, reading ``data_root``'s text cache (``textok embed-text``) where it is exact when
      ``use_cache``; a ``TextEncoder`` (e.g. one already loaded): used, cut at the model's budget; a
      ``TextConditioner`` or any callable captions -> ``TextEmbedding`` (a ``TextCache``): used as given;
    - ``pool``: a dict shared between tokenizers so that one encoder is loaded once per device.

    ``name_or_path`` and ``revision``: the folder or Hub repo id (at that revision) ``from_pretrained`` loaded
    it from (None when built here); a generation folder records a Hub id instead of copying the weights.

    Captions are a list with one caption per image, or one caption (a string or a 1-list) for the whole
    batch (or a ``TextEmbedding`` of them, embedded as ``condition`` does). Images are float
    [B, 3, H, W] in [-1, 1] at ``config.image_size``; tokens are [B, N, d] (``config.num_tokens``,
    ``config.token_dim``).
    """

    def __init__(self, model: TexTok, text: TextConditioner | TextEncoder | Embedder | None = None, *,
                 data_root: str | os.PathLike | None = None, use_cache: bool = True, pool: dict | None = None):
        if not isinstance(model, TexTok):
            raise TypeError(f"CaptionedTokenizer wraps a TexTok, got {type(model).__name__}")
        self.model = model
        self.name_or_path: str | None = None
        self.revision: str | None = None
        c = model.config
        if c.text_in == "none":
            self.text = None  # the baseline has no text parameters: captions are ignored
        elif text is None:
            self.text = TextConditioner.for_tokenizer(c, data_root, use_cache, pool=pool)
        elif isinstance(text, TextEncoder):
            self.text = TextConditioner(text, c.max_text_tokens, data_root, use_cache, pool)
        else:
            self.text = text
        if isinstance(self.text, TextConditioner):
            self.text.to(self.device)

    # ---- loading and saving -------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, device: str | torch.device = "cpu", *,
                        text: TextConditioner | TextEncoder | Embedder | None = None,
                        data_root: str | os.PathLike | None = None, use_cache: bool = True, pool: dict | None = None,
                        revision: str | None = None, cache_dir: str | os.PathLike | None = None) -> "CaptionedTokenizer":
        """The tokenizer in a folder (``config.json`` + ``model.safetensors``) or a Hub repo id ``"org/name"``
        (downloaded into the Hub's cache at ``revision``; the cache only under ``HF_HUB_OFFLINE=1``), in eval
        mode on ``device``. Half-precision weights load as a float32 model. The other arguments: as the
        constructor's."""
        folder = resolve_folder(name_or_path, revision=revision, cache_dir=cache_dir)
        model = TexTok.from_pretrained(folder, map_location=device)
        tokenizer = cls(model, text, data_root=data_root, use_cache=use_cache, pool=pool)
        tokenizer.name_or_path, tokenizer.revision = str(name_or_path), revision
        return tokenizer

    @staticmethod
    def load_config(name_or_path: str | os.PathLike, revision: str | None = None) -> TexTokConfig:
        """The ``TexTokConfig`` of a folder or Hub repo, without building the model."""
        return TexTok.load_config(resolve_folder(name_or_path, revision=revision))

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Write ``directory/config.json`` (the config, naming the text encoder) and ``model.safetensors``."""
        return self.model.save_pretrained(directory)

    def push_to_hub(self, repo_id: str, *, private: bool | None = None, token: str | None = None,
                    revision: str | None = None, commit_message: str | None = None, create_pr: bool = False):
        """Upload this tokenizer's folder to the Hub repo ``repo_id`` (created if missing); returns the
        ``CommitInfo``. ``from_pretrained(repo_id)`` loads it back."""
        with tempfile.TemporaryDirectory(prefix="textok-push-") as tmp:
            self.save_pretrained(tmp)
            return push_folder(tmp, repo_id, private=private, token=token, revision=revision,
                               commit_message=commit_message, create_pr=create_pr)

    # ---- the model's facts --------------------------------------------------------------
    @property
    def config(self) -> TexTokConfig:
        return self.model.config

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def token_shape(self) -> tuple[int, int]:
        """(N, d): tokens per image and channels per token."""
        return self.model.token_shape

    @property
    def uses_text(self) -> bool:
        """False for the no-text baseline, which ignores captions."""
        return self.text is not None

    @property
    def loaded_encoder(self) -> TextEncoder | None:
        """The text encoder if it was loaded (a caption the cache lacked), else None."""
        return self.text.loaded_encoder if isinstance(self.text, TextConditioner) else None

    def to(self, device: str | torch.device) -> "CaptionedTokenizer":
        self.model.to(device)
        if isinstance(self.text, TextConditioner):
            self.text.to(device)
        return self

    def eval(self) -> "CaptionedTokenizer":
        self.model.eval()
        return self

    # ---- captions -> the condition --------------------------------------------------------
    def condition(self, captions: Captions, batch: int | None = None, dropout: float = 0.0,
                  rng: torch.Generator | None = None) -> TextEmbedding | None:
        """The text condition of ``batch`` images: ``captions`` (one, or one per image) embedded as in
        training, on the model's device; None for the baseline. ``dropout``: replace each caption by the
        empty one with that probability, drawn from ``rng`` (training's caption dropout; needs the default
        ``TextConditioner``). A ``TextEmbedding`` is taken as the captions already embedded."""
        if self.text is None:
            return None
        if isinstance(captions, TextEmbedding):
            return captions.to(self.device)
        if isinstance(captions, str):
            captions = [captions]
        if not captions:
            raise ValueError(f"this tokenizer is text-conditioned (text_in={self.config.text_in!r}): give --caption "
                             f"(one caption, or one per image)")
        captions = broadcast(captions, batch) if batch is not None else list(captions)
        if dropout > 0:
            if not isinstance(self.text, TextConditioner):
                raise ValueError("caption dropout needs the tokenizer's own TextConditioner")
            return self.text(captions, dropout, rng).to(self.device)
        return self.text(captions).to(self.device)

    # ---- images <-> tokens --------------------------------------------------------------
    @torch.no_grad()
    def posterior(self, images: torch.Tensor, captions: Captions = None) -> DiagonalGaussian:
        """images [B, 3, H, W] in [-1, 1] -> the posterior over tokens [B, N, d] (``mean``, ``logvar``,
        ``mode()``, ``sample(generator)``); what a latent cache stores with ``store="moments"``."""
        images = images.to(self.device)
        text = self.condition(captions, images.shape[0]) if self.config.text_in_encoder else None
        return self.model.encode_posterior(images, text)

    @torch.no_grad()
    def encode(self, images: torch.Tensor, captions: Captions = None, sample: bool = False,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """images [B, 3, H, W] in [-1, 1] -> tokens [B, N, d]: the posterior mode (a sample with ``sample``).
        ``captions``: one, or one per image; ignored where the tokenizer sees no text."""
        posterior = self.posterior(images, captions)
        return posterior.sample(generator) if sample else posterior.mode()

    @torch.no_grad()
    def decode(self, tokens: torch.Tensor, captions: Captions = None) -> torch.Tensor:
        """tokens [B, N, d] -> images float [B, 3, H, W] clamped to [-1, 1]. ``captions``: one, or one per
        token set; ignored where the detokenizer sees no text."""
        tokens = tokens.to(self.device)
        text = self.condition(captions, tokens.shape[0]) if self.config.text_in_decoder else None
        return self.model.decode(tokens, text).float().clamp(-1, 1)

    @torch.no_grad()
    def reconstruct(self, images: torch.Tensor, captions: Captions = None,
                    decode_captions: Captions = None) -> torch.Tensor:
        """images [B, 3, H, W] in [-1, 1] -> their reconstructions, float [B, 3, H, W] in [-1, 1]: encoded
        with ``captions`` and decoded with the same, or with ``decode_captions`` when given (a caption swap:
        how much the detokenizer relies on the caption). Each caption list is embedded once."""
        images = images.to(self.device)
        B, c = images.shape[0], self.config
        text = self.condition(captions, B) if self.uses_text and (c.text_in_encoder or decode_captions is None) \
            else None
        tokens = self.model.encode(images, text if c.text_in_encoder else None)
        if decode_captions is not None and c.text_in_decoder:
            text = self.condition(decode_captions, B)
        return self.model.decode(tokens, text if c.text_in_decoder else None).float().clamp(-1, 1)

    @torch.no_grad()
    def cycle_error(self, tokens: torch.Tensor, captions: Captions = None) -> torch.Tensor:
        """[B]: how far decoding ``tokens`` [B, N, d] with ``captions`` and re-encoding moves them
        (``TexTok.cycle_error``); lower means the caption explains the tokens better."""
        return self.model.cycle_error(tokens.to(self.device), self.condition(captions, tokens.shape[0]))

    @torch.no_grad()
    def choose_captions(self, tokens: torch.Tensor, candidates: Sequence[Sequence[str]],
                        batch_size: int = 256) -> list[str]:
        """A decoding caption for each token set of ``tokens`` [B, N, d] that has none of its own (a
        class-conditional DiT's samples): of ``candidates[i]``, the one with the lowest ``cycle_error``.
        A detokenizer that sees no text gets the first candidate of each list (the choice changes nothing)."""
        if len(candidates) != tokens.shape[0]:
            raise ValueError(f"got {len(candidates)} candidate lists for {tokens.shape[0]} token sets")
        lists = [list(dict.fromkeys(c)) for c in candidates]  # distinct, in order
        for i, c in enumerate(lists):
            if not c:
                raise ValueError(f"token set {i} has no candidate caption")
        if not self.config.text_in_decoder:
            return [c[0] for c in lists]
        tokens = tokens.to(self.device)
        pairs = [(i, c) for i, cands in enumerate(lists) if len(cands) > 1 for c in cands]
        errors: list[float] = []
        for start in range(0, len(pairs), batch_size):
            chunk = pairs[start : start + batch_size]
            index = torch.tensor([i for i, _ in chunk], device=tokens.device)
            errors += self.cycle_error(tokens[index], [c for _, c in chunk]).tolist()
        best: dict[int, tuple[float, str]] = {}
        for (i, caption), e in zip(pairs, errors):
            if i not in best or e < best[i][0]:
                best[i] = (e, caption)
        return [best[i][1] if i in best else c[0] for i, c in enumerate(lists)]

    def __repr__(self) -> str:
        c = self.config
        text = "no text" if self.text is None else f"text {c.text_encoder!r} in {c.text_in}, <= {c.max_text_tokens} tokens"
        return (f"CaptionedTokenizer({c.image_size} px, {c.num_tokens} tokens x {c.token_dim} channels, {text})")


def load_tokenizer(checkpoint: str | os.PathLike | TexTok | CaptionedTokenizer, device: str | torch.device = "cpu",
                   **text_options) -> CaptionedTokenizer:
    """``checkpoint`` as a ``CaptionedTokenizer`` in eval mode on ``device``: a folder or Hub repo id
    (``from_pretrained``), a ``TexTok`` (wrapped) or a ``CaptionedTokenizer`` (moved). ``text_options``:
    the constructor's ``text``, ``data_root``, ``use_cache``, ``pool`` (not for a ``CaptionedTokenizer``)."""
    if isinstance(checkpoint, CaptionedTokenizer):
        if text_options:
            raise ValueError(f"{sorted(text_options)} cannot change a CaptionedTokenizer's text; build it with them")
        return checkpoint.to(device).eval()
    if isinstance(checkpoint, TexTok):
        return CaptionedTokenizer(checkpoint.to(device).eval(), **text_options)
    return CaptionedTokenizer.from_pretrained(checkpoint, device, **text_options)


__all__ = ["CaptionedTokenizer", "load_tokenizer"]
