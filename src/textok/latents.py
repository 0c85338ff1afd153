"""The latent cache: a data set encoded once by a TexTok tokenizer, read by DiT training.

``encode_dataset(checkpoint, data, out)`` writes into ``out``:

- ``cache.json``: what was encoded (tokenizer folder and a fingerprint of its weights, data folder,
  split and a fingerprint of the picked items, token shape, what is stored, class names, the text
  encoder the tokenizer uses, shard size, image count); a rerun continues only a cache of the
  same encoding (``SAME_ENCODING``) and refuses any other, naming what differs;
- ``shard-00000.safetensors`` ...: ``shard_size`` images each, tensors ``tokens`` [n, N, d]
  (the posterior mode, ``store="mode"``) or ``mean`` and ``logvar`` [n, N, d]
  (``store="moments"``: training then samples the posterior), ``labels`` [n] (int64, -1 if
  none), ``index`` [n] (position in the split); header metadata ``captions`` and ``keys``
  (JSON lists of strings: the caption the tokenizer saw, and the image's stable key);
- ``stats.json``: per-channel mean and std [d] of the tokens (of the posterior means for
  ``"moments"``) over the whole split, used to normalise the DiT's inputs to ~N(0, 1).

``data`` is a folder data set or WebDataset shards (a shard folder, a ``.tar``, or a pattern
``train-{000000..000127}.tar``, read by a tar index: ``textok.data.stream.ShardIndex``);
``max_images`` takes that many images evenly spread over the split (not the first N).
Each shard is written atomically, so an interrupted run is resumed by running the same
command again: finished shards are skipped. ``LatentCache(out)`` reads the whole cache (a few
KB per image) into memory as a map-style data set.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import logging
import math
import os
from pathlib import Path

import torch
from safetensors import safe_open
from tqdm.auto import tqdm

from .data.datasets import collate, open_dataset
from .data.formats import BadSampleError, read_manifest
from .data.stream import data_home, is_shard_source, open_indexed, spread
from .hub import resolve_folder
from .io import load_state_dict, save_state_dict, state_fingerprint, write_json_atomic
from .tokenizer import CaptionedTokenizer

log = logging.getLogger(__name__)

META_NAME = "cache.json"
STATS_NAME = "stats.json"
FORMAT = 1
#: what a cache stores per image (``encode-dataset --store``); the CLI reads its choices here
STORES: dict[str, str] = {
    "mode": "the posterior mode (tokens)",
    "moments": "the posterior mean and log-variance (DiT training then samples the posterior)",
}


def shard_name(i: int) -> str:
    return f"shard-{i:05d}.safetensors"


def _shard_ok(path: Path) -> bool:
    """A finished shard: present and with a readable header (writes are atomic)."""
    if not path.is_file():
        return False
    try:
        with safe_open(str(path), framework="pt") as f:
            return "captions" in (f.metadata() or {})
    except Exception:
        return False


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None


def cache_meta(root: str | os.PathLike) -> dict | None:
    """A latent cache's ``cache.json`` (what was encoded: tokenizer, data, token shape, text encoder, ...), or None
    where there is none (yet). The one reader of it: the cache, a resumed encoding and the DiT config use it."""
    path = Path(root).expanduser() / META_NAME
    if not path.is_file():
        return None
    meta = _read_json(path)
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: not a latent cache description (a JSON object)")
    return meta


def _class_names(dataset, root: Path) -> list[str]:
    names = list(getattr(dataset, "classes", []) or [])
    if not names:
        names = list(read_manifest(root).get("classes", []))
    if not names:  # class tree without a manifest: the class names are the records' class names by label
        records = getattr(dataset, "records", [])
        by_label = {r.label: r.class_name for r in records if getattr(r, "label", -1) >= 0 and r.class_name}
        if by_label and sorted(by_label) == list(range(len(by_label))):
            names = [by_label[i] for i in range(len(by_label))]
    return names


@torch.no_grad()
def encode_dataset(checkpoint: str | os.PathLike, data: str | os.PathLike, out: str | os.PathLike, split: str = "train",
                   batch_size: int = 64, shard_size: int = 4096, store: str = "mode", device: str | torch.device = "cpu",
                   max_images: int | None = None, use_text_cache: bool = True, num_workers: int = 0,
                   progress: bool = True) -> Path:
    """Encode ``split`` of data set ``data`` with the TexTok in ``checkpoint`` into cache ``out``
    (see the module docstring). Resumable; returns ``out``.

    Images are the ADM centre crop at the tokenizer's size; the tokenizer sees each image's
    caption (from the data set's text cache when present, else the frozen text encoder).
    """
    if store not in STORES:
        raise ValueError(f"store must be one of {list(STORES)}, got {store!r}")
    if batch_size < 1 or shard_size < 1:
        raise ValueError(f"batch_size and shard_size must be >= 1, got {batch_size} and {shard_size}")
    checkpoint, data, out = resolve_folder(checkpoint), Path(data).expanduser(), Path(out).expanduser()
    device = torch.device(device)
    c = CaptionedTokenizer.load_config(checkpoint)
    if store == "moments" and c.latent != "kl":
        raise ValueError(f"{checkpoint}: store='moments' needs a KL tokenizer (latent='kl'), this one is {c.latent!r}")
    ds, home, shards = _open_source(data, split, c.image_size)
    picks = spread(len(ds), max_images)  # --max-images: evenly spread over the split, not its first N
    # the captions as training embedded them: the data set's text cache where it is exact, else the encoder
    tok = CaptionedTokenizer.from_pretrained(checkpoint, device, data_root=home if c.text_in_encoder else None,
                                             use_cache=use_text_cache)
    meta = _describe(checkpoint, home, split, c, ds, picks, shard_size, store, shards)
    # the weights, not the path: a swapped file is another encoding
    meta["tokenizer_weights"] = state_fingerprint(tok.model)
    meta["data_fingerprint"] = _data_fingerprint(ds, picks)
    _claim(out, meta)
    encoder = _ShardEncoder(tok, store, batch_size, num_workers)
    n, num_shards = len(picks), meta["num_shards"]
    todo = [i for i in range(num_shards) if not _shard_ok(out / shard_name(i))]
    if len(todo) < num_shards:
        log.info("%s: %d of %d shards already done", out, num_shards - len(todo), num_shards)
    bar = None
    if progress and todo:
        bar = tqdm(total=sum(min(shard_size, n - i * shard_size) for i in todo), desc="encode", unit="img")
    try:
        for i in todo:
            lo, hi = i * shard_size, min(n, (i + 1) * shard_size)
            encoder.write_shard(ds, picks[lo:hi], out / shard_name(i), bar,
                                where=(home, f"every image of shard {i} (items {lo}..{hi - 1}) is bad"))
    finally:  # an error message must not land on the bar's line
        if bar is not None:
            bar.close()
    if ds.report.num_bad:
        log.warning("%s: skipped %d bad image(s), not cached:\n%s", home, ds.report.num_bad, ds.report.summary())
    write_json_atomic(out / STATS_NAME, compute_stats(out))
    return out


def _open_source(data: Path, split: str, image_size: int):
    """``(data set, its home folder, the shards' path or None)``: a folder data set, or WebDataset
    shards (a folder, a .tar, a pattern) read at random by a tar index."""
    if is_shard_source(data):
        return open_indexed(data, split, image_size), data_home(data), str(Path(data).resolve())
    return open_dataset(data, split=split, image_size=image_size, train=False), data, None


def _describe(checkpoint: Path, data: Path, split: str, c, ds, picks: list[int], shard_size: int, store: str,
              shards: str | None) -> dict:
    """``cache.json``: what is (to be) encoded."""
    n = len(picks)
    meta = {
        "format": FORMAT, "tokenizer": str(checkpoint.resolve()), "data": str(data.resolve()), "split": split,
        "num_images": n, "shard_size": shard_size, "num_shards": math.ceil(n / shard_size), "store": store,
        "num_tokens": c.num_tokens, "token_dim": c.token_dim, "image_size": c.image_size,
        "text_encoder": c.text_encoder, "text_in": c.text_in, "classes": _class_names(ds, data),
    }
    if shards is not None:
        meta["shards"] = shards
    if n < len(ds):
        meta["subset"] = "spread"  # images floor(i * len / n), i < n
    return meta


def _data_fingerprint(ds, picks: list[int]) -> str:
    """SHA-256 (16 hex digits) of what the picked items are, read without decoding an image: each
    record's key, captions and label and its file's size and modification time (folder data sets),
    or each shard sample's key and members' sizes (shards)."""
    h = hashlib.sha256()
    records = getattr(ds, "records", None)
    for i in picks:
        if records is not None:
            r = records[i]
            try:
                st = r.path.stat()
                stamp = (st.st_size, st.st_mtime_ns)
            except OSError:
                stamp = None
            h.update(json.dumps([r.key, list(r.captions), r.label, stamp]).encode())
        else:  # ShardIndex: the tar headers
            s = bisect.bisect_right(ds.starts, i) - 1
            entry = ds.index[s][i - ds.starts[s]]
            h.update(json.dumps([ds.shards[s].name, entry["key"], sorted((k, v[1]) for k, v in entry["members"].items())]).encode())
    return h.hexdigest()[:16]


#: what must be equal for a rerun to continue a cache (resume) rather than refuse it
SAME_ENCODING = ("tokenizer", "tokenizer_weights", "data", "data_fingerprint", "split", "num_images", "shard_size",
                 "store", "shards", "subset", "num_tokens", "token_dim", "image_size", "text_encoder")


def _claim(out: Path, meta: dict) -> None:
    """Start the cache ``out``, or continue one of the same encoding; refuse one of another."""
    old = cache_meta(out)
    if old is not None:
        differ = [k for k in SAME_ENCODING if old.get(k) != meta.get(k)]
        if differ:
            shown = "; ".join(f"{k}: {old.get(k)!r} != {meta.get(k)!r}" for k in differ[:4])
            raise ValueError(f"{out} holds a cache of another encoding (cache != now: {shown}); "
                             f"use another --out or delete it")
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / META_NAME, meta)


class _ShardEncoder:
    """Images -> what a cache shard stores (``store``), one shard file at a time."""

    def __init__(self, tokenizer: CaptionedTokenizer, store: str, batch_size: int, num_workers: int):
        self.tokenizer, self.store = tokenizer, store
        self.batch_size, self.num_workers = batch_size, num_workers

    def encode(self, batch: dict) -> dict[str, torch.Tensor]:
        posterior = self.tokenizer.posterior(batch["images"], batch["captions"])
        if self.store == "mode":
            return {"tokens": posterior.mode().float().cpu()}
        return {"mean": posterior.mean.float().cpu(), "logvar": posterior.logvar.float().cpu()}

    def write_shard(self, ds, indices: list[int], path: Path, bar, where: tuple) -> None:
        """Encode items ``indices`` of ``ds`` into the shard file ``path`` (atomically); bad images
        are skipped (their indices leave gaps); ``where``: the error if every image is bad."""
        loader = torch.utils.data.DataLoader(_Indexed(ds, indices), batch_size=self.batch_size,
                                             num_workers=self.num_workers, collate_fn=_collate_indexed)
        parts: dict[str, list] = {"tokens": [], "mean": [], "logvar": [], "labels": [], "captions": [], "keys": [],
                                  "index": []}
        for batch, index, tried in loader:
            if bar is not None:
                bar.update(tried)  # skipped images count as done: the bar's total is every picked image
            if batch is None:  # every image of the batch was bad
                continue
            parts["index"] += index
            for k, v in self.encode(batch).items():
                parts[k].append(v)
            parts["labels"].append(batch["labels"])
            parts["captions"] += batch["captions"]
            parts["keys"] += batch["keys"]
        if not parts["index"]:
            raise BadSampleError(*where)
        tensors = {k: torch.cat(parts[k]) for k in ("tokens", "mean", "logvar") if parts[k]}
        tensors["labels"] = torch.cat(parts["labels"]).long()
        tensors["index"] = torch.tensor(parts["index"], dtype=torch.long)  # skipped images leave gaps
        save_state_dict(tensors, path, metadata={
            "captions": json.dumps(parts["captions"]), "keys": json.dumps(parts["keys"]), "format": "pt"})


def _read_shard(path: Path) -> tuple[dict[str, torch.Tensor], list[str], list[str]]:
    tensors = load_state_dict(path)
    with safe_open(str(path), framework="pt") as f:
        header = f.metadata() or {}
    try:
        captions, keys = json.loads(header["captions"]), json.loads(header["keys"])
    except (KeyError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not a latent-cache shard (header metadata: {e})") from None
    return tensors, captions, keys


def compute_stats(out: str | os.PathLike) -> dict:
    """Per-channel mean / std [d] of the cached tokens (float64 accumulation)."""
    out = Path(out)
    meta = cache_meta(out)
    if meta is None:
        raise FileNotFoundError(f"{out}: not a latent cache (no {META_NAME})")
    total, s1, s2 = 0, None, None
    for i in range(meta["num_shards"]):
        tensors, _, _ = _read_shard(out / shard_name(i))
        z = (tensors["tokens"] if "tokens" in tensors else tensors["mean"]).double().flatten(0, 1)  # [n*N, d]
        s1 = z.sum(0) if s1 is None else s1 + z.sum(0)
        s2 = (z**2).sum(0) if s2 is None else s2 + (z**2).sum(0)
        total += z.shape[0]
    mean = s1 / total
    std = (s2 / total - mean**2).clamp(min=0).sqrt().clamp(min=1e-6)
    return {"mean": mean.tolist(), "std": std.tolist(), "count": total}


class LatentCache(torch.utils.data.Dataset):
    """A finished latent cache as a map-style data set.

    ``cache[i]`` -> ``{"tokens": [N, d]`` (or ``"mean"`` and ``"logvar"``), ``"label": int,
    "caption": str, "key": str}``; ``cache.mean`` / ``cache.std`` are the per-channel
    statistics [d]; ``cache.meta`` is ``cache.json``.
    """

    def __init__(self, root: str | os.PathLike):
        root = Path(root).expanduser()
        meta = cache_meta(root)
        if meta is None:
            raise FileNotFoundError(f"{root}: not a latent cache (no {META_NAME}); run `textok encode-dataset` first")
        self.root, self.meta = root, meta
        if self.meta.get("format") != FORMAT:
            raise ValueError(f"{root / META_NAME}: unknown cache format {self.meta.get('format')!r} (expected {FORMAT})")
        missing = [shard_name(i) for i in range(self.meta["num_shards"]) if not (root / shard_name(i)).is_file()]
        if missing or not (root / STATS_NAME).is_file():
            raise ValueError(f"{root}: the cache is incomplete (missing {missing[:3] or [STATS_NAME]}); "
                             "rerun the same `textok encode-dataset` command to finish it")
        stats = _read_json(root / STATS_NAME)
        self.mean = torch.tensor(stats["mean"], dtype=torch.float32)
        self.std = torch.tensor(stats["std"], dtype=torch.float32)
        parts: dict[str, list] = {}
        self.captions, self.keys = [], []
        for i in range(self.meta["num_shards"]):
            tensors, captions, keys = _read_shard(root / shard_name(i))
            for k, v in tensors.items():
                parts.setdefault(k, []).append(v)
            self.captions += captions
            self.keys += keys
        self.tensors = {k: torch.cat(v) for k, v in parts.items()}
        self.labels = self.tensors.pop("labels")
        self.tensors.pop("index")
        N, d = self.meta["num_tokens"], self.meta["token_dim"]
        for k, v in self.tensors.items():
            if tuple(v.shape[1:]) != (N, d) or v.shape[0] != len(self.captions):
                raise ValueError(f"{root}: tensor {k!r} has shape {tuple(v.shape)}, expected [{len(self.captions)}, {N}, {d}]")

    def __len__(self) -> int:
        return len(self.captions)

    @property
    def store(self) -> str:
        return self.meta["store"]

    @property
    def classes(self) -> list[str]:
        return list(self.meta.get("classes", []))

    @property
    def num_classes(self) -> int:
        return max(len(self.classes), int(self.labels.max()) + 1 if len(self.labels) else 0)

    def __getitem__(self, i: int) -> dict:
        item = {k: v[i] for k, v in self.tensors.items()}
        item.update(label=int(self.labels[i]), caption=self.captions[i], key=self.keys[i])
        return item

    def normalize(self, z: torch.Tensor) -> torch.Tensor:
        """tokens [..., d] -> (z - mean) / std."""
        return (z - self.mean.to(z)) / self.std.to(z)


class _Indexed(torch.utils.data.Dataset):
    """Items ``indices`` of ``ds`` with their index (``None`` for a skipped bad image)."""

    def __init__(self, ds, indices: list[int]):
        self.ds, self.indices = ds, list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, j: int):
        item = self.ds[self.indices[j]]
        return None if item is None else (item, self.indices[j])


def _collate_indexed(pairs: list) -> tuple[dict | None, list[int], int]:
    """``(batch of the good items or None, their indices, how many items were read)``."""
    kept = [p for p in pairs if p is not None]
    return (collate([item for item, _ in kept]) if kept else None), [index for _, index in kept], len(pairs)


def collate_latents(items: list[dict]) -> dict:
    """Items of a ``LatentCache`` -> ``{"tokens"|"mean"+"logvar": [B, N, d], "labels": [B],
    "captions": list[str], "keys": list[str]}``."""
    if not items:
        raise ValueError("cannot collate an empty batch")
    batch = {k: torch.stack([it[k] for it in items]) for k in ("tokens", "mean", "logvar") if k in items[0]}
    batch["labels"] = torch.tensor([it["label"] for it in items], dtype=torch.long)
    batch["captions"] = [it["caption"] for it in items]
    batch["keys"] = [it["key"] for it in items]
    return batch


__all__ = ["encode_dataset", "LatentCache", "cache_meta", "collate_latents", "compute_stats", "shard_name", "STORES"]
