"""Atomic file writes and the safetensors + JSON checkpoint format shared by every model.

A model folder holds ``config.json`` (the model's config dataclass) and ``model.safetensors``.
Nothing is ever unpickled; a folder whose weights do not fit its config is refused with a
message that names the offending tensors.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

import torch
from safetensors.torch import load_file, save_file

from .config import ConfigError, from_dict, read_config_text, to_dict

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
#: the largest model a checkpoint config may describe (a sanity bound far above any real TexTok / DiT)
MAX_PARAMETERS = 20_000_000_000
#: bounds on any one size field of a model config (tokens, width, classes...) and on its depth
MAX_SIZE, MAX_DEPTH = 1 << 24, 4096


def landing_path(path: str | os.PathLike) -> Path:
    """Where a write to ``path`` lands: its folder resolved (links followed, and ``..`` after a folder
    that does not exist yet taken as the OS takes it once the folder is made), its name kept (a link
    as the output is still that link). ``nothere/../mine.png`` is ``./mine.png``: the checks below
    must see that file, not a missing one."""
    path = Path(path).expanduser()
    if path.name in ("", ".", ".."):
        return Path(os.path.realpath(path))
    return Path(os.path.realpath(path.parent)) / path.name


#: temporaries are named ``.<name>.textok<PID>.<8 random>.tmp``: the PID says whose they are, so a later
#: run can tell a killed writer's leftovers (its process is gone) from a live writer's file
_TEMP = re.compile(r"^\..*\.textok(?P<pid>\d+)\.[a-z0-9_]{8}\.tmp$")


def temporary_prefix(path: Path, prefix: str | None = None) -> str:
    """The start of the name of a temporary file or folder for ``path`` (``.<name>.textok<PID>.``)."""
    return f"{prefix if prefix is not None else f'.{path.name}.'}textok{os.getpid()}."


def _alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill(pid, 0) sends CTRL_C_EVENT there: never judge, never remove
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return pid > 0  # another user's process (or a PID this OS cannot hold): not ours to judge
    return True


def remove_stale_temporaries(folder: str | os.PathLike, prefix: str | None = None, depth: int = 0) -> int:
    """Delete the temporaries of killed textok writers in ``folder`` (files or folders named by
    ``temporary_prefix``, whose process no longer runs); ``prefix``: only those of one target
    (``.model.safetensors.``); ``depth``: also in sub-folders that deep. Returns how many went.

    A SIGKILL gives a writer no chance to remove its temporary; the next run of the same command
    removes it here. A live writer's temporary (its PID runs) is never touched."""
    folder, removed = Path(folder), 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        m = _TEMP.match(entry.name)
        if m and (prefix is None or entry.name.startswith(prefix)) and int(m["pid"]) != os.getpid() \
                and not _alive(int(m["pid"])):
            try:
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)
                removed += 1
            except FileNotFoundError:  # another run removed it first
                pass
        elif depth > 0 and entry.is_dir(follow_symlinks=False) and not m:
            removed += remove_stale_temporaries(entry.path, prefix, depth - 1)
    return removed


def named_os_error(error: OSError, path: str | os.PathLike, temporaries: tuple = ()) -> OSError:
    """``error`` naming ``path`` (the file the user asked for) when it names none (a full disk: a
    write has no file name) or one of ``temporaries`` (the user never asked for those)."""
    if error.errno is None:
        return error
    if error.filename is None or any(str(error.filename) == str(t) for t in temporaries):
        return OSError(error.errno, error.strerror or str(error), str(path))  # the errno's subclass
    return error


#: outputs ``check_outputs`` found new (not ``--overwrite``): their writer must not replace a file
#: that another process created there since (two runs writing the same new ``--out``)
_NEW_OUTPUTS: set[str] = set()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, overwrite: bool | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    A crash, a full disk or a kill leaves either the old file or the new one, never half of one
    (a kill leaves the temporary, which the next write of ``path`` removes: see
    ``remove_stale_temporaries``). Every OS error names ``path``, not the temporary. The write
    lands at ``landing_path(path)``: ``nothere/../x`` writes ``./x`` and creates no ``nothere/``.
    ``overwrite=False`` refuses (``FileExistsError``) if ``path`` exists when the new file is put
    in place; the default is that for an output ``check_outputs`` found new, else to replace.
    """
    shown = Path(path)
    path = landing_path(path)
    if overwrite is None:
        overwrite = str(path) not in _NEW_OUTPUTS
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path.parent, prefix=f".{path.name}.")
        fd, tmp = tempfile.mkstemp(prefix=temporary_prefix(path), suffix=".tmp", dir=path.parent)
    except OSError as e:  # a read-only folder names the user's file, not the temporary
        ours = e.filename is not None and Path(str(e.filename)).name.startswith(f".{path.name}.")
        raise named_os_error(e, shown, (e.filename,) if ours else ()) from None
    os.close(fd)
    tmp = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    mode = 0o666 & ~umask  # mkstemp makes 0600; give the file the permissions open() would
    try:
        try:
            os.chmod(tmp, mode)
            yield tmp
            os.chmod(tmp, mode)  # again: a writer may have replaced the file (safetensors does, as 0600)
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            if overwrite:
                os.replace(tmp, path)
            else:
                _publish_new(tmp, path, shown)
        except FileExistsError:
            raise
        except OSError as e:  # name the file the user asked for, not the temporary one
            raise named_os_error(e, shown, (tmp,)) from None
    finally:
        _NEW_OUTPUTS.discard(str(path))  # one write per check
        if tmp.exists():
            tmp.unlink()


def _publish_new(tmp: Path, path: Path, shown: Path) -> None:
    """Put ``tmp`` in place as ``path`` only if no ``path`` exists: a hard link fails if it does,
    so of two writers racing to one new file the second is refused instead of replacing the first."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise FileExistsError(f"{shown}: created by another process while this one was writing it; "
                              f"pass --overwrite to replace it, or choose another name") from None
    except OSError:  # no hard links on this file system: claim the name, then rename onto the claim
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            raise FileExistsError(f"{shown}: created by another process while this one was writing it; "
                                  f"pass --overwrite to replace it, or choose another name") from None
        os.replace(tmp, path)
        return
    tmp.unlink()


def check_outputs(outputs, inputs=(), overwrite: bool = False, option: str = "--out") -> list[Path]:
    """Refuse outputs that would destroy something: ``ValueError`` naming the file and ``option``.

    - an output that is one of ``inputs`` (the same file by any path: links, ``./``,
      ``nothere/../``) is refused even with ``overwrite``: the input would be gone before it was read;
    - two outputs of one command that are the same file are refused (the second would replace the
      first while the command reported both);
    - an existing output is refused unless ``overwrite`` (the user's ``--overwrite``).

    Every path is taken where a write would land (``landing_path``), so no route through a missing
    folder or ``..`` walks around these checks. A new output is remembered: its ``atomic_path``
    refuses to replace a file another process created there meanwhile. Returns the landing paths.
    Called before any work (and before any folder is made), so a refusal costs nothing.
    """
    shown = [Path(o).expanduser() for o in outputs]
    outputs = [landing_path(o) for o in shown]
    same = {_file_identity(landing_path(i)): Path(i) for i in inputs}
    seen: dict = {}
    for user, out in zip(shown, outputs):
        key = _file_identity(out)
        if key in same:
            raise ValueError(f"{option} {user}: is the input {same[key]}; it would be replaced before it is read "
                             f"(choose another output)")
        if key in seen:
            raise ValueError(f"{option} {user}: two outputs of this command are the same file ({seen[key]} and {user}); "
                             f"give the inputs different names or write a grid")
        seen[key] = user
        if out.is_dir():
            raise IsADirectoryError(f"{option} {user}: is a folder, not a file")
        if out.exists() or out.is_symlink():
            if not overwrite:
                raise FileExistsError(f"{option} {user}: exists; pass --overwrite to replace it, or choose another name")
        elif not overwrite:
            _NEW_OUTPUTS.add(str(out))
        else:
            _NEW_OUTPUTS.discard(str(out))
    return outputs


def _file_identity(path: Path):
    """What makes two paths the same file: (device, inode) if it exists, else its absolute normalised
    path (a symlinked folder on the way is resolved)."""
    try:
        st = path.stat()
        return (st.st_dev, st.st_ino)
    except OSError:
        return os.path.normcase(os.path.realpath(path))


def state_fingerprint(*modules: torch.nn.Module) -> str:
    """SHA-256 (16 hex digits) of the modules' tensors, names included: which weights made a result
    (a cache, a set of samples). The same weights give the same fingerprint wherever they are stored."""
    import hashlib

    h = hashlib.sha256()
    for module in modules:
        for name, t in sorted(module.state_dict().items()):
            h.update(name.encode())
            h.update(t.detach().to("cpu").contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def check_finite(state: dict[str, torch.Tensor], where: str) -> None:
    """Refuse weights holding NaN or inf (``ValueError`` naming up to three tensors): a NaN model
    decodes every image to black and reports success."""
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        more = f" (+{len(bad) - 3} more)" if len(bad) > 3 else ""
        raise ValueError(f"{where}: non-finite weights (NaN or inf) in {', '.join(bad[:3])}{more}; "
                         f"the checkpoint is corrupt")


LOCK_NAME = ".lock"


class FolderLock:
    """One process owns ``folder``: an exclusive ``flock`` on ``folder/.lock`` holding the owner's PID.

    The OS drops the lock when the process dies (even on SIGKILL), so a stale lock never blocks
    a later run; the file itself is left in place (deleting it would race with a new owner).
    """

    def __init__(self, folder: str | os.PathLike, option: str = "--out", wait: bool = False):
        """``wait=True`` blocks until the holder finishes instead of refusing (a short writer such
        as ``embed-text``, whose second run then extends what the first wrote)."""
        self._fd = None
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / LOCK_NAME
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            import fcntl
        except ImportError:  # no flock (Windows): run unlocked
            return
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if wait:
                import logging

                holder = os.pread(self._fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
                logging.getLogger(__name__).info("%s: waiting for textok process %s to finish", self.folder, holder)
                fcntl.flock(self._fd, fcntl.LOCK_EX)
                os.ftruncate(self._fd, 0)
                os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)
                self._clean()
                return
            try:
                holder = os.pread(self._fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
            finally:
                os.close(self._fd)
                self._fd = None
            from .errors import FolderLockedError

            raise FolderLockedError(f"{option} {self.folder}: in use by another textok process (PID {holder}); "
                                    f"wait for it to finish or choose another folder") from None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)
        self._clean()

    def _clean(self) -> None:
        # the folder is ours now: a killed earlier owner's temporaries (model/.model.safetensors.*.tmp)
        # are removed at the start, not only when the same file is written again
        remove_stale_temporaries(self.folder, depth=2)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def __enter__(self) -> "FolderLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def __del__(self) -> None:
        self.release()


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def replace_dir_atomic(src: Path, dst: Path) -> None:
    """Move finished folder ``src`` onto ``dst`` (replacing it) with at most a rename's window."""
    dst = Path(dst)
    if dst.exists():
        old = dst.with_name(f".{dst.name}.old")
        if old.exists():
            shutil.rmtree(old)
        os.replace(dst, old)
        os.replace(src, dst)
        shutil.rmtree(old)
    else:
        os.replace(src, dst)


def copy_dir_atomic(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Copy folder ``src`` to ``dst`` (replacing it) through a temporary sibling: ``dst`` is either the old
    folder or the whole copy, never half of one (a stale temporary from a killed copy is discarded)."""
    dst = Path(dst)
    tmp = dst.with_name(f".{dst.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    shutil.copytree(src, tmp)
    replace_dir_atomic(tmp, dst)
    return dst


def save_state_dict(state: dict[str, torch.Tensor], path: str | os.PathLike, metadata: dict | None = None) -> None:
    """Write tensors to a safetensors file atomically (contiguous CPU copies)."""
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state.items()}
    with atomic_path(path) as tmp:
        # safetensors writes an unreadable header for no tensors + empty metadata: pass None then
        try:
            save_file(tensors, str(tmp), metadata={k: str(v) for k, v in metadata.items()} if metadata else None)
        except OSError:
            raise
        except Exception as e:  # SafetensorError ("No space left on device", ...): an OS-level failure
            raise OSError(f"{path}: could not write ({e})") from None


def load_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    try:
        return load_file(str(path))
    except Exception as e:  # safetensors raises its own error types for corrupt files
        raise ValueError(f"{path}: not a readable safetensors file ({e})") from None


def _dtype_fits(stored: torch.dtype, wanted: torch.dtype) -> bool:
    """A stored tensor may hold a parameter of ``wanted``: any float for a float (half-precision
    files load into float32 models), else exactly the same type. An integer in place of a float
    has the same bytes and shape but other values: loading would cast it silently."""
    if wanted.is_floating_point:
        return stored.is_floating_point
    return stored == wanted


def check_state_dict(model: torch.nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    """Raise ``ValueError`` naming missing, unexpected, wrongly shaped and wrongly typed tensors."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = sorted(
        f"{k}: file {tuple(state[k].shape)} vs config {tuple(expected[k].shape)}"
        for k in set(expected) & set(state)
        if tuple(state[k].shape) != tuple(expected[k].shape)
    )
    dtypes = sorted(
        f"{k}: file {str(state[k].dtype).replace('torch.', '')} vs model {str(expected[k].dtype).replace('torch.', '')}"
        for k in set(expected) & set(state)
        if not _dtype_fits(state[k].dtype, expected[k].dtype)
    )
    if missing or unexpected or shapes or dtypes:
        parts = []
        for title, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", shapes),
                             ("dtype mismatch", dtypes)):
            if items:
                more = f" (+{len(items) - 5} more)" if len(items) > 5 else ""
                parts.append(f"{title}: {', '.join(items[:5])}{more}")
        raise ValueError(f"{where}: weights do not match the config ({'; '.join(parts)})")


#: the dtype names of a safetensors header (``get_dtype()``) -> torch dtypes
SAFETENSORS_DTYPES = {name: dtype for name, dtype in {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "F8_E4M3": getattr(torch, "float8_e4m3fn", None), "F8_E5M2": getattr(torch, "float8_e5m2", None),
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool}.items() if dtype is not None}


class _MetaInit(torch.overrides.TorchFunctionMode):
    """Random initialisation of ``meta`` tensors is a no-op (there are no values): skip it. ``normal_``
    on ``meta`` runs through torch's Python reference implementations, whose first import costs
    seconds, on every command that loads a checkpoint."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if getattr(func, "__name__", None) == "normal_":  # Tensor.normal_(t) or nn.init.normal_(tensor=t)
            tensor = args[0] if args else kwargs.get("tensor")
            if isinstance(tensor, torch.Tensor) and tensor.device.type == "meta":
                return tensor
        return func(*args, **kwargs)


class PretrainedMixin:
    """``save_pretrained(dir)`` / ``from_pretrained(dir)`` for an ``nn.Module`` built from a config.

    Subclasses set ``config_class`` and take the config as the only constructor argument.
    """

    config_class: type

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        save_state_dict(self.state_dict(), directory / WEIGHTS_NAME, metadata={"format": "pt"})
        write_json_atomic(directory / CONFIG_NAME, {"class": type(self).__name__, **to_dict(self.config)})
        return directory

    @classmethod
    def load_config(cls, directory: str | os.PathLike):
        path = Path(directory) / CONFIG_NAME
        if not path.is_file():
            hint = ""
            if (Path(directory) / "trainer_state.json").is_file():  # checkpoints/step_N of a run
                hint = (f" (it is a training checkpoint: give the run's model/ folder, "
                        f"{Path(directory).parent.parent / 'model'}, or --init-from for its weights)")
            raise FileNotFoundError(f"{directory}: no {CONFIG_NAME}; not a {cls.__name__} checkpoint folder{hint}")
        try:
            data = json.loads(read_config_text(path, "checkpoint config"))
        except (json.JSONDecodeError, RecursionError) as e:
            raise ConfigError(f"{path}: not valid JSON ({e})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: must hold a JSON object (the model's config), got a {type(data).__name__}")
        kind = data.pop("class", cls.__name__)
        if kind != cls.__name__:
            raise ConfigError(f"{directory} holds a {kind}, not a {cls.__name__}")
        config = from_dict(cls.config_class, data, where=str(path))
        cls._check_sizes(config, Path(directory))
        return config

    @classmethod
    def _check_sizes(cls, config, directory: Path) -> None:
        """Refuse a config whose model is absurdly large, or whose tensor shapes differ from the
        weights file's header, before a byte is allocated: ``num_tokens: 2000000000`` would
        otherwise ask for a terabyte (the model is built on the ``meta`` device here)."""
        for f in dataclasses.fields(config):  # bounds that make even the meta build cheap
            value = getattr(config, f.name)
            limit = MAX_DEPTH if "depth" in f.name else MAX_SIZE
            if isinstance(value, int) and not isinstance(value, bool) and value > limit:
                raise ConfigError(f"{directory / CONFIG_NAME}: {f.name}={value:,} is beyond any model (limit "
                                  f"{limit:,}); the config is corrupt")
        with torch.device("meta"), _MetaInit():
            model = cls(config)
        n = sum(p.numel() for p in model.parameters())
        if n > MAX_PARAMETERS:
            raise ConfigError(f"{directory / CONFIG_NAME}: describes a model of {n:,} parameters (limit "
                              f"{MAX_PARAMETERS:,}); the config is corrupt")
        weights = directory / WEIGHTS_NAME
        if not weights.is_file():
            return
        try:
            from safetensors import safe_open

            with safe_open(str(weights), framework="pt") as f:
                header = {k: (tuple(f.get_slice(k).get_shape()), f.get_slice(k).get_dtype()) for k in f.keys()}
        except Exception as e:  # safetensors raises its own error types for corrupt files
            raise ValueError(f"{weights}: not a readable safetensors file ({e})") from None
        unknown = sorted(k for k, (_, d) in header.items() if d not in SAFETENSORS_DTYPES)
        if unknown:
            raise ValueError(f"{weights}: tensor {unknown[0]} has dtype {header[unknown[0]][1]}, which no textok "
                             f"model holds")
        check_state_dict(model, {k: torch.empty(s, dtype=SAFETENSORS_DTYPES[d], device="meta")
                                 for k, (s, d) in header.items()}, str(weights))

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, map_location: str | torch.device = "cpu", **overrides):
        """Load a folder written by ``save_pretrained``; refuses weights that do not fit the config.

        The model is built in float32 and every floating-point tensor of the file is cast to its
        parameter's dtype: a folder stored in half precision (the shipped checkpoints) loads as
        a float32 model."""
        config = cls.load_config(directory)
        if overrides:
            config = dataclasses.replace(config, **overrides)
            cls._check_sizes(config, Path(directory))
        state = load_state_dict(Path(directory) / WEIGHTS_NAME)
        check_finite(state, str(Path(directory) / WEIGHTS_NAME))
        model = cls(config)
        check_state_dict(model, state, str(directory))
        expected = model.state_dict()
        state = {k: v.to(expected[k].dtype) if v.is_floating_point() and expected[k].is_floating_point() else v
                 for k, v in state.items()}
        model.load_state_dict(state)
        return model.to(map_location).eval()
