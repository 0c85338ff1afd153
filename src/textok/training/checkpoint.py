"""Training checkpoints: atomic folders of safetensors + JSON, nothing pickled.

A checkpoint is a folder ``<run>/checkpoints/step_00001234/`` holding

- ``trainer_state.json``: step, data position (epoch, index in epoch), counters, the full config;
- ``model.safetensors``, ``ema.safetensors``, ``critic.safetensors`` (the discriminator and its
  LeCAM anchors; frozen weights such as LPIPS's VGG are not saved, they come from the assets);
- ``optimizer.{safetensors,json}``, ``critic_optimizer.{safetensors,json}``: optimiser state
  flattened by ``flatten_state`` (tensors in safetensors, structure and scalars in JSON);
- ``rng_rank{r}.{safetensors,json}``: Python, NumPy, torch CPU and accelerator RNG states of
  each process.

The learning-rate schedule is a pure function of the step (``lr_at``), so it needs no state of
its own beyond the step. The folder is written under a temporary name and renamed when complete,
so a kill at any moment leaves either the previous checkpoints or the new one, never half of it.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import diff_configs
from ..errors import TextokError
from ..io import load_state_dict, save_state_dict, write_json_atomic

STATE_NAME = "trainer_state.json"
_STEP_DIR = re.compile(r"^step_(\d{8,})$")


# ---- generic (tensor tree) <-> (JSON, safetensors) ----------------------------------------
def flatten_state(obj: Any) -> tuple[Any, dict[str, torch.Tensor]]:
    """Split a nested structure of dicts/lists/tuples/tensors/arrays/scalars into a JSON-able
    skeleton and a flat ``{name: tensor}`` dict. Dict keys keep their type (optimiser state is
    keyed by int)."""
    tensors: dict[str, torch.Tensor] = {}

    def walk(x):
        if isinstance(x, torch.Tensor):
            name = f"t{len(tensors)}"
            tensors[name] = x.detach().to("cpu").clone().contiguous()
            return {"__tensor__": name}
        if isinstance(x, np.ndarray):
            name = f"t{len(tensors)}"
            tensors[name] = torch.from_numpy(x.astype(np.int64) if x.dtype == np.uint32 else x.copy())
            return {"__ndarray__": name, "dtype": str(x.dtype)}
        if isinstance(x, dict):
            return {"__dict__": [[walk(k), walk(v)] for k, v in x.items()]}
        if isinstance(x, tuple):
            return {"__tuple__": [walk(v) for v in x]}
        if isinstance(x, list):
            return [walk(v) for v in x]
        if isinstance(x, (np.integer, np.floating)):
            return x.item()
        if x is None or isinstance(x, (bool, int, float, str)):
            return x
        raise TypeError(f"cannot checkpoint a value of type {type(x).__name__}")

    return walk(obj), tensors


def unflatten_state(skeleton: Any, tensors: dict[str, torch.Tensor]) -> Any:
    def walk(x):
        if isinstance(x, dict):
            if "__tensor__" in x:
                return tensors[x["__tensor__"]]
            if "__ndarray__" in x:
                return tensors[x["__ndarray__"]].numpy().astype(x["dtype"])
            if "__dict__" in x:
                return {walk(k): walk(v) for k, v in x["__dict__"]}
            if "__tuple__" in x:
                return tuple(walk(v) for v in x["__tuple__"])
            raise ValueError(f"unknown checkpoint node {sorted(x)}")
        if isinstance(x, list):
            return [walk(v) for v in x]
        return x

    return walk(skeleton)


def save_object(path_stem: Path, obj: Any) -> None:
    """``obj`` -> ``<stem>.safetensors`` + ``<stem>.json``."""
    skeleton, tensors = flatten_state(obj)
    save_state_dict(tensors, path_stem.with_suffix(".safetensors"))
    write_json_atomic(path_stem.with_suffix(".json"), skeleton)


# ---- RNG ----------------------------------------------------------------------------------
def rng_state() -> dict:
    """The RNG states this process uses: Python, NumPy, torch CPU and (if any) CUDA."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    v, internal, gauss = state["python"]
    random.setstate((v, tuple(internal), gauss))
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"].to(torch.uint8))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.to(torch.uint8) for s in state["cuda"]])


# ---- module states ------------------------------------------------------------------------
def trainable_state_dict(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """``state_dict`` without frozen parameters (e.g. LPIPS's VGG), which come from assets."""
    frozen = {n for n, p in module.named_parameters() if not p.requires_grad}
    return {k: v for k, v in module.state_dict().items() if k not in frozen}


def load_trainable_state_dict(module: torch.nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    expected = trainable_state_dict(module)
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ValueError(f"{where}: tensors do not match (missing {missing[:5]}, unexpected {unexpected[:5]})")
    module.load_state_dict(state, strict=False)


# ---- folders ------------------------------------------------------------------------------
def step_dir(root: Path, step: int) -> Path:
    return Path(root) / f"step_{step:08d}"


def list_checkpoints(root: str | os.PathLike) -> list[Path]:
    """Complete checkpoint folders under ``root``, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if _STEP_DIR.match(p.name) and (p / STATE_NAME).is_file()]
    return sorted(found, key=lambda p: int(_STEP_DIR.match(p.name).group(1)))


def latest_checkpoint(root: str | os.PathLike) -> Path | None:
    found = list_checkpoints(root)
    return found[-1] if found else None


def prune_checkpoints(root: str | os.PathLike, keep_last: int) -> None:
    for old in list_checkpoints(root)[:-keep_last]:
        shutil.rmtree(old, ignore_errors=True)


def temporary_dir(root: Path, step: int) -> Path:
    return Path(root) / f".tmp_step_{step:08d}"


def commit_dir(tmp: Path, final: Path) -> None:
    """Publish a finished temporary folder under its final name (one rename)."""
    if final.exists():  # re-saving the same step (e.g. the final checkpoint): replace it
        shutil.rmtree(final)
    os.replace(tmp, final)


def read_trainer_state(directory: str | os.PathLike) -> dict:
    path = Path(directory) / STATE_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{directory}: not a training checkpoint (no {STATE_NAME})")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None


class CorruptCheckpointError(TextokError):
    """A checkpoint folder that cannot be trusted: unreadable files or non-finite values."""


@dataclass
class CheckpointFiles:
    """Everything a checkpoint folder holds, read once by ``read_checkpoint``."""

    directory: Path
    state: dict  # trainer_state.json
    skeletons: dict[str, Any]  # the other JSON files, by stem
    tensors: dict[str, dict[str, torch.Tensor]]  # the safetensors files, by stem

    def weights(self, stem: str) -> dict[str, torch.Tensor]:
        if stem not in self.tensors:
            raise FileNotFoundError(f"weights file not found: {self.directory / stem}.safetensors")
        return self.tensors[stem]

    def object(self, stem: str) -> Any:
        """What ``save_object`` wrote under ``stem``."""
        if stem not in self.skeletons:
            raise FileNotFoundError(f"checkpoint file missing: {self.directory / stem}.json")
        return unflatten_state(self.skeletons[stem], self.weights(stem))


def read_checkpoint(directory: str | os.PathLike) -> CheckpointFiles:
    """Read every file of a checkpoint, once; ``CorruptCheckpointError`` naming the first bad one.

    Non-finite weights or optimiser moments are refused too: resuming from them only produces
    skipped steps and a NaN model, while the run looks healthy."""
    directory = Path(directory)
    try:
        state = read_trainer_state(directory)
        skeletons = {js.stem: json.loads(js.read_text(encoding="utf-8"))
                     for js in sorted(directory.glob("*.json")) if js.name != STATE_NAME}
        tensors = {}
        for path in sorted(directory.glob("*.safetensors")):
            tensors[path.stem] = load_state_dict(path)
            bad = [k for k, v in tensors[path.stem].items() if v.is_floating_point() and not torch.isfinite(v).all()]
            if bad:
                raise CorruptCheckpointError(f"{path}: non-finite values in {', '.join(bad[:3])}"
                                             + (f" (+{len(bad) - 3} more)" if len(bad) > 3 else ""))
    except CorruptCheckpointError:
        raise
    except (OSError, ValueError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise CorruptCheckpointError(f"{directory}: unreadable checkpoint ({e})") from None
    return CheckpointFiles(directory, state, skeletons, tensors)


def check_same_config(saved: dict, current: dict, where: str, may_differ: tuple[str, ...] = ()) -> None:
    """Refuse to resume from a checkpoint written with a different config, naming the fields."""
    diffs = [d for d in diff_configs(saved, current) if not d.startswith(may_differ)]
    if diffs:
        shown = "; ".join(diffs[:10]) + (f" (+{len(diffs) - 10} more)" if len(diffs) > 10 else "")
        raise ValueError(
            f"{where} was written with a different config; differing fields (checkpoint != now): {shown}. "
            f"Resume with the same config, or start a new run (--init-from to fine-tune from its weights)."
        )


__all__ = [
    "flatten_state", "unflatten_state", "save_object", "rng_state", "set_rng_state",
    "trainable_state_dict", "load_trainable_state_dict", "list_checkpoints", "latest_checkpoint",
    "prune_checkpoints", "read_trainer_state", "check_same_config", "step_dir", "STATE_NAME",
    "CorruptCheckpointError", "CheckpointFiles", "read_checkpoint",
]
