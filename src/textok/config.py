"""Typed configuration helpers shared by every config in the project.

Configs are plain dataclasses. This module turns them into / out of dicts, JSON and YAML,
applies dotted command-line overrides (``model.num_tokens=16``) and checks field types so
that a wrong value fails with a message naming the field, not deep inside torch.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration value is wrong; the message names the field and why."""


#: the words YAML 1.1 reads as booleans (``mixed_precision: no`` arrives as False)
YAML_FALSE, YAML_TRUE = ("no", "off", "false", "n"), ("yes", "on", "true", "y")


def _type_check(value: Any, tp: Any, where: str) -> Any:
    """Return ``value`` converted to ``tp`` when the conversion is lossless, else raise."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _type_check(value, arg, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{where}: {value!r} does not fit {tp}")
    if origin is typing.Literal:
        choices = typing.get_args(tp)
        if isinstance(value, bool) and all(isinstance(c, str) for c in choices):
            # YAML 1.1 reads an unquoted no / off / yes / on as a boolean: take the word it was
            spelled = [c for c in choices if c.lower() in (YAML_FALSE if value is False else YAML_TRUE)]
            if len(spelled) == 1:
                value = spelled[0]
        if value not in choices:
            raise ConfigError(f"{where} must be one of {list(choices)}, got {value!r}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        args = typing.get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f"{where} must have {len(args)} items, got {len(value)}")
            return tuple(_type_check(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        inner = args[0] if args else Any
        out = [_type_check(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(out) if origin is tuple else out
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a mapping, got {value!r}")
        return dict(value)
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a mapping, got {value!r}")
        return from_dict(tp, value, where=where)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):
            try:  # YAML 1.1 reads "3e-4" (no dot) as a string
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        if not math.isfinite(float(value)):  # optim.lr=inf "trains" to NaN and exits 0
            raise ConfigError(f"{where} must be a finite number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        return value
    return value


def from_dict(cls: type[T], data: dict, where: str | None = None) -> T:
    """Build dataclass ``cls`` from ``data``; unknown keys and wrong types raise ``ConfigError``."""
    where = where or cls.__name__
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {unknown}; known fields: {sorted(names)}")
    kwargs = {k: _type_check(v, hints[k], f"{where}.{k}") for k, v in data.items()}
    return cls(**kwargs)


def to_dict(cfg: Any) -> dict:
    """A JSON-ready dict of a (nested) dataclass; tuples become lists."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def with_fields(settings: T, where: str, fields: dict[str, Any]) -> T:
    """``settings`` (a dataclass) with ``fields`` replaced: how a function that takes a settings dataclass
    also takes its fields as keyword arguments. An unknown name is a ``TypeError`` listing the known ones."""
    known = {f.name for f in dataclasses.fields(settings)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise TypeError(f"{where}: unknown setting(s) {unknown}; the settings are {sorted(known)}")
    return dataclasses.replace(settings, **fields) if fields else settings


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``"a.b=3"`` into (["a", "b"], 3); the value is parsed as YAML (numbers, bools, lists)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key.subkey=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"override {text!r} has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.split("."), value


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Return a copy of nested dict ``data`` with dotted ``overrides`` applied."""
    data = json.loads(json.dumps(data))
    for text in overrides:
        keys, value = parse_override(text)
        node = data
        for k in keys[:-1]:
            child = node.get(k)
            if child is None:
                child = node[k] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"override {text!r}: {k!r} is not a section")
            node = child
        node[keys[-1]] = value
    return data


def apply_preset(section: Any, presets: dict[str, dict], kind: str, where: str | None = None) -> Any:
    """A config section naming ``preset: NAME`` -> the preset's fields, then the section's own
    fields over them (every preset merge of the project goes through here)."""
    if not isinstance(section, dict) or "preset" not in section:
        return section
    section = dict(section)
    name = section.pop("preset")
    if name not in presets:
        prefix = f"{where}.preset: " if where else ""
        raise ConfigError(f"{prefix}unknown {kind} preset {name!r}; presets: {sorted(presets)}")
    return {**presets[name], **section}


def merge_dicts(base: dict, over: dict) -> dict:
    """``over`` on top of ``base``, section by section (nested mappings merge; anything else,
    lists included, is replaced)."""
    out = dict(base)
    for k, v in over.items():
        out[k] = merge_dicts(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


#: the largest JSON / YAML config file read (a config is a few KB; a bigger one is not a config,
#: and a hostile one must fail before its parser spends the memory)
MAX_CONFIG_BYTES = 1 << 20


def read_config_text(path: str | os.PathLike, what: str = "config file") -> str:
    """A config file's text, refused (``ConfigError``) beyond ``MAX_CONFIG_BYTES`` or if not UTF-8."""
    path = Path(path)
    size = path.stat().st_size
    if size > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: {size:,} bytes is too large for a {what} (limit {MAX_CONFIG_BYTES:,})")
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None


#: the most values a YAML config may expand to: anchors and aliases (``&a`` / ``*a``) can make a
#: 1 KB file stand for 10^9 values (the "billion laughs"), which later copies would materialise
MAX_CONFIG_VALUES = 100_000


def _check_expanded_size(data: Any, path: Path) -> None:
    """Walk ``data`` as it would be copied (aliases expanded), stopping at ``MAX_CONFIG_VALUES``."""
    count, stack = 0, [data]
    while stack:
        node = stack.pop()
        count += 1
        if count > MAX_CONFIG_VALUES:
            raise ConfigError(f"{path}: expands to more than {MAX_CONFIG_VALUES:,} values (YAML aliases?); "
                              f"not a config")
        if isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, (list, tuple)):
            stack.extend(node)


#: the key of a YAML config that names the config it extends
BASE_KEY = "base"


def load_yaml(path: str | os.PathLike, _chain: tuple[Path, ...] = ()) -> dict:
    """Read a YAML mapping, with a clear error for a missing or malformed file.

    ``base: other.yaml`` (resolved relative to this file's folder) makes the file extend
    ``other.yaml``: its sections are merged over the base's (``merge_dicts``); bases may have
    bases; a cycle is refused."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(read_config_text(path))
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    except RecursionError:  # [[[[...]]]] nested beyond the parser's stack
        raise ConfigError(f"{path}: nested too deeply to be a config") from None
    _check_expanded_size(data, path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping, got {type(data).__name__}")
    if BASE_KEY not in data:
        return data
    data = dict(data)
    base = data.pop(BASE_KEY)
    if not isinstance(base, str) or not base.strip():
        raise ConfigError(f"{path}: {BASE_KEY} must name a YAML file (relative to {path.parent}), got {base!r}")
    base_path = path.parent / Path(base).expanduser()
    chain = _chain + (path.resolve(),)
    if base_path.resolve() in chain:
        names = " -> ".join(str(p) for p in chain + (base_path.resolve(),))
        raise ConfigError(f"{path}: {BASE_KEY}: {base} makes a cycle ({names})")
    if not base_path.is_file():
        raise ConfigError(f"{path}: {BASE_KEY}: {base_path} not found")
    return merge_dicts(load_yaml(base_path, chain), data)


# ---- options every command shares, checked at the edge (docs/reliability.md, rule 4) ----------------
# Without these checks the value reaches torch: ``--device cuda`` on a CPU build fails with torch's
# assertion, ``--threads 100000`` ends in a segmentation fault, ``--seed -1`` in NumPy's own words.

#: the largest seed: NumPy's legacy generators and derived seeds (``seed * 1_000_003 + batch``)
#: stay within 64 bits
MAX_SEED = 2**32 - 1
#: threads per core a command may ask for (more is never faster, and OpenMP fails far beyond it)
THREADS_PER_CORE = 4


def max_threads() -> int:
    """The most ``--threads`` this machine takes: ``THREADS_PER_CORE`` per core."""
    return THREADS_PER_CORE * (os.cpu_count() or 1)


def check_threads(value: int, option: str = "--threads") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= max_threads():
        raise ConfigError(f"{option} must lie in [1, {max_threads()}] ({THREADS_PER_CORE} per core of this "
                          f"machine's {os.cpu_count() or 1}), got {value}")
    return value


def check_seed(value, option: str = "--seed") -> int:
    """``value`` as an int in ``[0, MAX_SEED]``; a float must be whole (the page sends numbers)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED:
        raise ConfigError(f"{option} must be an integer in [0, {MAX_SEED}], got {value}")
    return value


def check_device(name: str | None, option: str = "--device") -> str | None:
    """``name`` if this build of torch can run on it (``cpu``; ``cuda``/``cuda:N`` with that GPU;
    ``mps``, ``xpu`` when available), else ``ConfigError`` naming ``option`` and what there is.
    ``None`` (the process's own accelerator) passes."""
    if name is None:
        return None
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, ValueError) as e:
        raise ConfigError(f"{option} {name}: not a device name ({str(e).splitlines()[0]})") from None
    kind = device.type
    if kind == "cpu":
        return name
    if kind == "meta":
        raise ConfigError(f"{option} {name}: the meta device holds no values; use cpu or a GPU")
    backend = getattr(torch, kind, None) if kind != "mps" else getattr(torch.backends, "mps", None)
    try:
        available = bool(backend is not None and backend.is_available())
        count = backend.device_count() if available and hasattr(backend, "device_count") else int(available)
    except Exception:  # noqa: BLE001 - a backend that cannot even answer is not there
        available, count = False, 0
    if not available:
        raise ConfigError(f"{option} {name}: this build of torch ({torch.__version__}) has no usable {kind} device "
                          f"({_devices()} available)")
    if device.index is not None and device.index >= count:
        raise ConfigError(f"{option} {name}: there is no {kind} device {device.index} ({count} present)")
    return name


def _devices() -> str:
    import torch

    found = ["cpu"]
    if torch.cuda.is_available():
        found += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    return ", ".join(found)


def diff_configs(a: dict, b: dict, prefix: str = "") -> list[str]:
    """Dotted names of the fields whose values differ between two nested config dicts."""
    out = []
    for k in sorted(set(a) | set(b)):
        name = f"{prefix}{k}"
        va, vb = a.get(k, "<missing>"), b.get(k, "<missing>")
        if isinstance(va, dict) and isinstance(vb, dict):
            out += diff_configs(va, vb, name + ".")
        elif va != vb:
            out.append(f"{name}: {va!r} != {vb!r}")
    return out
