"""Precomputed text embeddings: run the frozen text encoder once per caption, never in training.

``build_text_cache(root, "minilm")`` embeds every caption of a dataset (all splits, the class
caption pools, and optionally the ablation's caption variants) and writes one safetensors file,
``root/text_cache/<encoder>.safetensors`` (no pickle), holding:

- ``embeddings`` [T, C] (float16 by default) and ``mask`` [T] (bool): the tokens of all
  captions concatenated, each caption trimmed after its last real token;
- ``offsets`` [N + 1] (int64): caption i owns rows ``offsets[i]:offsets[i+1]``;
- ``captions_utf8`` [bytes] (uint8) and ``caption_offsets`` [N + 1]: the captions themselves
  (the cache key, after ``prepare_caption`` with the encoder's ``max_words``);
- header metadata: encoder name, width, ``max_words`` / ``max_tokens`` / padding, dtype.

``load_text_cache(root, encoder_name)`` returns a ``TextCache`` (or None if there is none): it
is called like the ``TextEncoder`` (``cache(captions) -> TextEmbedding``, float32 [B, L, C] with
a bool mask [B, L], padded to the longest caption of the batch exactly as the encoder pads), so
one can stand in for the other; ``textok.conditioning.TextConditioner`` decides when the cache is
exact for a model (its token budget) and falls back to the encoder otherwise. The values are
the encoder's rounded to float16 (relative error <= 2^-11); the encoder's own output for a
caption also moves by ~1e-6 with the batch it is padded in, so "identical" means identical up
to that rounding. Build with
``dtype="float32"`` for the unrounded values.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from pathlib import Path
from typing import Iterable, Sequence

import torch
from safetensors import safe_open
from tqdm.auto import tqdm

from ..io import FolderLock, save_state_dict, state_fingerprint
from ..text import TextEmbedding, TextEncoder, prepare_caption
from .datasets import list_splits, load_caption_pool, open_dataset
from .formats import HELDOUT_CAPTIONS_FILE, TEXT_CACHE_DIR, detect_format, text_problem
from .stream import data_home, is_pattern, resolve_shards, shard_captions

log = logging.getLogger(__name__)

CACHE_DIR = TEXT_CACHE_DIR
#: storage dtypes of a cache (``embed-text --dtype``); the CLI reads its choices here
DTYPES = {"float16": torch.float16, "float32": torch.float32}


def cache_path(root: str | os.PathLike, encoder_name: str) -> Path:
    """``root/text_cache/<slug>.safetensors``; a path-like encoder name gets a short hash. For
    shards named by a pattern or a ``.tar`` the cache lives in the shards' folder."""
    root = data_home(root)
    name = str(encoder_name)
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(name).name or name).strip("._") or "encoder"
    if name != slug:
        slug += "-" + hashlib.sha256(name.encode()).hexdigest()[:8]
    return Path(root).expanduser() / CACHE_DIR / f"{slug}.safetensors"


class TextCache:
    """Cached text embeddings, callable like a ``TextEncoder``: ``cache(captions) -> TextEmbedding``."""

    def __init__(self, captions: Sequence[str], embeddings: torch.Tensor, mask: torch.Tensor, offsets: torch.Tensor,
                 name: str, max_words: int, max_tokens: int, padding: str = "longest", path: Path | None = None):
        self.index = {c: i for i, c in enumerate(captions)}
        self.embeddings = embeddings  # [T, C]
        self.token_mask = mask  # [T]
        self.offsets = offsets.tolist()
        self.name = name
        self.max_words = max_words
        self.max_tokens = max_tokens
        self.padding = padding
        self.path = path
        self.device = torch.device("cpu")

    @property
    def dim(self) -> int:
        return self.embeddings.shape[-1]

    def __len__(self) -> int:
        return len(self.index)

    def __contains__(self, caption: str) -> bool:
        return prepare_caption(caption, self.max_words) in self.index

    def to(self, device: str | torch.device) -> "TextCache":
        """Outputs go to ``device`` (the table itself stays on the CPU)."""
        self.device = torch.device(device)
        return self

    def eval(self) -> "TextCache":
        return self

    def train(self, mode: bool = True) -> "TextCache":
        return self

    def __call__(self, captions: Sequence[str] | str) -> TextEmbedding:
        if isinstance(captions, str):
            captions = [captions]
        if len(captions) == 0:
            raise ValueError("no captions given")
        rows = []
        for c in captions:
            i = self.index.get(prepare_caption(c, self.max_words))
            if i is None:
                raise ValueError(
                    f"caption not in the text cache {self.path}: {c[:80]!r}; run "
                    f"`textok embed-text --data DIR --encoder {self.name}` (or embed through "
                    f"textok.conditioning.TextConditioner, which falls back to the encoder)"
                )
            rows.append((self.offsets[i], self.offsets[i + 1]))
        L = max(b - a for a, b in rows)
        if self.padding == "max_length":
            L = max(L, self.max_tokens)
        emb = torch.zeros(len(rows), L, self.dim)
        mask = torch.zeros(len(rows), L, dtype=torch.bool)
        for j, (a, b) in enumerate(rows):
            emb[j, : b - a] = self.embeddings[a:b].float()
            mask[j, : b - a] = self.token_mask[a:b]
        return TextEmbedding(emb.to(self.device), mask.to(self.device))


def _pack_strings(strings: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    data = [s.encode("utf-8") for s in strings]
    offsets = torch.tensor([0] + [len(d) for d in data], dtype=torch.int64).cumsum(0)
    blob = torch.frombuffer(bytearray(b"".join(data)), dtype=torch.uint8) if offsets[-1] > 0 else torch.zeros(0, dtype=torch.uint8)
    return blob, offsets


def _unpack_strings(blob: torch.Tensor, offsets: torch.Tensor) -> list[str]:
    raw = blob.numpy().tobytes()
    o = offsets.tolist()
    return [raw[o[i] : o[i + 1]].decode("utf-8") for i in range(len(o) - 1)]


def load_text_cache(root: str | os.PathLike, encoder_name: str) -> TextCache | None:
    """The dataset's cache for ``encoder_name``, or None if ``textok embed-text`` has not run."""
    path = cache_path(root, encoder_name)
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            t = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors has its own error types
        raise ValueError(f"{path}: not a readable text cache ({e}); delete it and run `textok embed-text`") from None
    needed = {"embeddings", "mask", "offsets", "captions_utf8", "caption_offsets"}
    if not needed <= set(t) or meta.get("encoder") != str(encoder_name):
        raise ValueError(f"{path}: not a text cache for encoder {encoder_name!r} (encoder {meta.get('encoder')!r}, "
                         f"tensors {sorted(t)})")
    captions = _unpack_strings(t["captions_utf8"], t["caption_offsets"])
    if len(captions) + 1 != len(t["offsets"]) or int(t["offsets"][-1]) != t["embeddings"].shape[0]:
        raise ValueError(f"{path}: inconsistent text cache (offsets do not match); delete it and rebuild")
    cache = TextCache(captions, t["embeddings"], t["mask"].bool(), t["offsets"], name=str(encoder_name),
                      max_words=int(meta["max_words"]), max_tokens=int(meta["max_tokens"]),
                      padding=meta.get("padding", "longest"), path=path)
    cache.meta = meta  # the header: encoder settings and the fingerprint of its weights (``encoder_weights``)
    return cache


def dataset_captions(root: str | os.PathLike, variants: Iterable[str] = ("full",)) -> list[str]:
    """Every caption a dataset can produce: all splits, both caption pools, the given variants."""
    captions: dict[str, None] = {}
    if is_pattern(root) or Path(root).expanduser().suffix == ".tar":  # named shards: their captions only
        shards = resolve_shards(root, "train")
        for variant in variants:
            captions.update(dict.fromkeys(shard_captions(shards, variant)))
        root = data_home(root)
        variants = ()
    root = Path(root).expanduser()
    for variant in variants:
        for split in list_splits(root):
            ds = open_dataset(root, split, caption_variant=variant)
            if detect_format(root) == "shards":  # without decoding images
                captions.update(dict.fromkeys(shard_captions(ds.shards, ds.caption_variant)))
            else:
                captions.update(dict.fromkeys(ds.captions))
    if (root / HELDOUT_CAPTIONS_FILE).is_file():  # generation draws unseen captions from here
        for pool in load_caption_pool(root, heldout=True).values():
            captions.update(dict.fromkeys(pool))
    return list(captions)


def build_text_cache(root: str | os.PathLike, encoder="minilm", captions: Sequence[str] | None = None,
                     variants: Iterable[str] = ("full",), batch_size: int = 256, dtype: str = "float16",
                     device: str = "cpu", max_tokens: int | None = None, progress: bool = True) -> Path:
    """Embed the dataset's captions (or ``captions``) with ``encoder`` (a name, a folder or a
    ``TextEncoder``) and write the cache. Incremental: captions already cached are not re-run.
    ``max_tokens`` must match the model's ``max_text_tokens`` when the trainer should use the
    cache (its captions are cut at that many tokens). ``progress``: a bar over the captions.
    Returns the cache file's path."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1):
        raise ValueError(f"--max-tokens must be a positive integer, got {max_tokens}")
    if isinstance(encoder, (str, os.PathLike)):
        kwargs = {} if max_tokens is None else {"max_tokens": max_tokens}
        encoder = TextEncoder.from_pretrained(encoder, device=device, **kwargs)
    elif max_tokens is not None:  # a loaded encoder is cut at max_tokens too (it used to be ignored)
        encoder = encoder.cut_at(max_tokens)
    if captions is None:
        captions = dataset_captions(root, variants)
    for i, c in enumerate(captions):
        reason = text_problem(c)
        if reason:
            raise ValueError(f"caption {i} ({c[:40]!r}...): {reason}")
    keys = list(dict.fromkeys(prepare_caption(c, encoder.max_words) for c in captions))
    path = cache_path(root, encoder.name)
    # one writer at a time: a second run waits, then extends what the first wrote (read-modify-write)
    with FolderLock(path.parent, option="text cache", wait=True):
        return _extend_cache(root, path, encoder, keys, batch_size, dtype, progress)


def _extend_cache(root, path: Path, encoder, keys: list[str], batch_size: int, dtype: str, progress: bool) -> Path:
    """Embed the ``keys`` the cache at ``path`` lacks and rewrite it (under the caller's lock)."""
    weights = state_fingerprint(encoder.model)
    old = load_text_cache(root, encoder.name)
    made_by = (old.meta.get("encoder_weights") if old is not None else None)
    if made_by is not None and made_by != weights:
        raise ValueError(f"{path}: made by other weights of the encoder {encoder.name!r} (fingerprint {made_by}, "
                         f"now {weights}); delete it to embed again with these")
    if old is not None and (old.max_words, old.max_tokens, old.padding) != (encoder.max_words, encoder.max_tokens,
                                                                            encoder.padding):
        log.warning("%s: made with max_words/max_tokens/padding %s, now %s: embedding every caption again", path,
                    (old.max_words, old.max_tokens, old.padding), (encoder.max_words, encoder.max_tokens,
                                                                    encoder.padding))
        old = None  # encoder settings changed: rebuild
    if old is not None and old.embeddings.dtype != DTYPES[dtype]:
        log.warning("%s: stored as %s, now %s: embedding every caption again", path, old.embeddings.dtype, dtype)
        old = None
    have = list(old.index) if old is not None else []
    new = [k for k in keys if old is None or k not in old.index]
    emb_parts = [old.embeddings] if old is not None else []
    mask_parts = [old.token_mask] if old is not None else []
    lengths = [b - a for a, b in zip(old.offsets[:-1], old.offsets[1:])] if old is not None else []
    log.info("text cache %s: %d captions cached, %d to embed", path, len(have), len(new))
    new.sort(key=len)  # similar lengths in a batch: less padding to run through the encoder
    with tqdm(total=len(new), desc="embed-text", unit="caption", disable=not progress or not new, leave=False) as bar:
        for i in range(0, len(new), batch_size):
            out = encoder(new[i : i + batch_size])
            for j in range(len(out)):
                real = out.mask[j].nonzero()
                n = int(real[-1]) + 1 if len(real) else 0
                emb_parts.append(out.embeddings[j, :n].to("cpu", DTYPES[dtype]))
                mask_parts.append(out.mask[j, :n].cpu())
                lengths.append(n)
            bar.update(len(out))
    all_captions = have + new
    blob, caption_offsets = _pack_strings(all_captions)
    C = encoder.dim
    tensors = {
        "embeddings": torch.cat(emb_parts) if emb_parts else torch.zeros(0, C, dtype=DTYPES[dtype]),
        "mask": torch.cat(mask_parts) if mask_parts else torch.zeros(0, dtype=torch.bool),
        "offsets": torch.tensor([0] + lengths, dtype=torch.int64).cumsum(0),
        "captions_utf8": blob,
        "caption_offsets": caption_offsets,
    }
    meta = {"encoder": encoder.name, "dim": C, "max_words": encoder.max_words, "max_tokens": encoder.max_tokens,
            "padding": encoder.padding, "dtype": dtype, "num_captions": len(all_captions), "encoder_weights": weights}
    save_state_dict(tensors, path, metadata=meta)
    return path
