"""What a data set looks like on disk, and what a bad sample is: shared by every reader and writer.

- **file names**: ``captions.jsonl`` (folder format), ``class_captions.json`` /
  ``class_captions_heldout.json`` (caption pools), ``manifest.json``, ``shards.json``, the
  ``text_cache/`` folder, the image extensions;
- **which format** a folder is (``detect_format``: folder, class tree or shards) and its
  manifest (``read_manifest``) and caption pools (``read_caption_pool``);
- **JSON lines**: ``json_lines(path, report)`` reads them (bad lines go to the report),
  ``write_json_lines`` writes them atomically;
- **bad samples**: the one policy vocabulary (``ON_BAD_SAMPLE``: ``"skip"`` | ``"error"``,
  used by configs and the CLI), ``BadSampleError`` and ``BadSampleReport``, whose
  ``handle(name, reason, policy)`` either raises or counts and warns (once per process);
- the per-sample options every data set class shares (``set_sample_options``).

Errors carry what they are about as attributes (``ImageError.name`` / ``.reason``,
``BadSampleError.name`` / ``.reason``): nothing parses them back out of messages.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import typing
from pathlib import Path
from typing import Literal, Sequence

from ..io import write_text_atomic
from .captions import check_caption_variant

log = logging.getLogger(__name__)

CAPTIONS_FILE = "captions.jsonl"
CLASS_CAPTIONS_FILE = "class_captions.json"
HELDOUT_CAPTIONS_FILE = "class_captions_heldout.json"
MANIFEST_FILE = "manifest.json"
SHARDS_FILE = "shards.json"
TEXT_CACHE_DIR = "text_cache"
IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm"}
#: image members of a WebDataset sample, in the order they are looked for
SHARD_IMAGE_EXTS = ("png", "jpg", "jpeg", "webp", "bmp", "gif", "tif", "tiff", "ppm")
#: folders the tools write into a data set that are never classes
RESERVED_DIRS = {TEXT_CACHE_DIR}

#: what to do with a bad sample: skip it (counted in the data set's report) or stop with an error
BadSamplePolicy = Literal["skip", "error"]
ON_BAD_SAMPLE: tuple[str, ...] = typing.get_args(BadSamplePolicy)


# ---- bad samples ------------------------------------------------------------------------------
class BadSampleError(ValueError):
    """A sample cannot be used: ``name`` (the file, line or shard member) and ``reason``."""

    def __init__(self, name, reason: str):
        self.name, self.reason = str(name), reason
        super().__init__(f"{printable(name)}: {printable(reason)}")

    def __reduce__(self):  # picklable (DataLoader workers send errors to the main process)
        return type(self), (self.name, self.reason)


def check_on_bad_sample(policy: str) -> str:
    if policy not in ON_BAD_SAMPLE:
        raise ValueError(f"on_bad_sample must be one of {ON_BAD_SAMPLE}, got {policy!r}")
    return policy


_WARNED: set[tuple[str, str]] = set()


def printable(text) -> str:
    """``text`` with control characters (and lone surrogates) escaped: a file named ``a\x1b[2Jb.png``
    is printed as written, not executed by the terminal."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape", "backslashreplace").decode("ascii")
                   for c in text)


def warn_bad_sample(name, reason: str) -> None:
    """Warn about a skipped sample once per process: the training set, the preview batch and
    the evaluation can open the same split, and each file should be reported once."""
    key = (str(name), reason)
    if key not in _WARNED:
        _WARNED.add(key)
        log.warning("skipping bad sample %s: %s", printable(name), printable(reason))


@dataclasses.dataclass
class BadSampleReport:
    """Counts and names the samples that were skipped, with the reason for each."""

    where: str = ""
    total: int = 0  # entries / files considered
    bad: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    # the pairs of ``bad``, for a constant-time "seen already?": a list scan per bad entry made
    # 100,000 bad lines take minutes
    _seen: set = dataclasses.field(default_factory=set, repr=False, compare=False)

    def add(self, name: str, reason: str) -> None:
        if len(self._seen) != len(self.bad):  # ``bad`` was filled or edited directly
            self._seen = set(self.bad)
        if (name, reason) not in self._seen:
            self._seen.add((name, reason))
            self.bad.append((name, reason))

    def handle(self, name: str, reason: str, policy: str, shown=None, warn: bool = True) -> None:
        """A bad sample: ``policy="error"`` raises ``BadSampleError`` naming ``shown`` (default
        ``name``); ``"skip"`` counts it as ``(name, reason)`` and, with ``warn``, warns once per
        process."""
        shown = name if shown is None else shown
        if policy == "error":
            raise BadSampleError(shown, reason)
        if warn and (name, reason) not in self._seen:
            warn_bad_sample(shown, reason)
        self.add(name, reason)

    @property
    def num_bad(self) -> int:
        return len(self.bad)

    def summary(self, limit: int | None = 20) -> str:
        lines = [f"{printable(self.where)}: {self.total} entries, {self.total - self.num_bad} usable, {self.num_bad} bad"]
        shown = self.bad if limit is None else self.bad[:limit]
        lines += [f"  {printable(name)}: {printable(reason)}" for name, reason in shown]
        if limit is not None and len(self.bad) > limit:
            lines.append(f"  ... and {len(self.bad) - limit} more")
        return "\n".join(lines)


# ---- files ------------------------------------------------------------------------------------
def json_lines(path: Path, report: BadSampleReport):
    """Yield ``(line_number, object)`` for each usable line of a JSONL file; bad lines go to ``report``."""
    data = Path(path).read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte-order mark (Windows editors): not part of line 1
        data = data[3:]
    for n, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        where = f"{Path(path).name}:{n}"
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            report.total += 1
            report.add(where, f"not UTF-8 ({e.reason} at byte {e.start})")
            continue
        try:
            obj = json.loads(text, object_pairs_hook=_unique_keys)
        except json.JSONDecodeError as e:
            report.total += 1
            report.add(where, f"not valid JSON ({e.msg})")
            continue
        except _RepeatedKey as e:  # {"file": "a.png", "file": "b.png"}: JSON keeps the last, silently
            report.total += 1
            report.add(where, f"the key {json.dumps(e.key)} is given twice (which one is meant?)")
            continue
        if not isinstance(obj, dict):
            report.total += 1
            report.add(where, "not a JSON object")
            continue
        reason = text_problem(obj)
        if reason:
            report.total += 1
            report.add(where, reason)
            continue
        yield n, obj


class _RepeatedKey(ValueError):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list) -> dict:
    """``json.loads``'s ``object_pairs_hook``: an object whose key repeats is an error, not its last value."""
    out = {}
    for key, value in pairs:
        if key in out:
            raise _RepeatedKey(key)
        out[key] = value
    return out


def text_problem(value) -> str | None:
    """Why ``value`` (a string, or strings inside lists and dicts) cannot be written as UTF-8, or
    None: JSON's ``"\\ud800"`` escapes decode to lone surrogates, which every encoder (the text
    encoder's tokenizer, a shard writer, a log line) refuses later, mid-run."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            try:
                v.encode("utf-8")
            except UnicodeEncodeError as e:
                return f"text is not valid Unicode ({e.reason}: {v[max(0, e.start - 10):e.start]!r}...)"
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, (list, tuple)):
            stack.extend(v)
    return None


def write_json_lines(path: Path, entries: Sequence[dict]) -> None:
    """One JSON object per line, UTF-8, written atomically."""
    write_text_atomic(path, "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in entries))


def read_manifest(root: str | os.PathLike) -> dict:
    path = Path(root) / MANIFEST_FILE
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not a valid JSON manifest ({e})") from None


def read_caption_pool(path: Path) -> dict[str, list[str]]:
    """A caption pool file: class name -> captions."""
    try:
        pool = json.loads(Path(path).read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not a valid UTF-8 JSON caption pool ({e})") from None
    if not isinstance(pool, dict) or not all(
        isinstance(v, list) and all(isinstance(c, str) for c in v) for v in pool.values()
    ):
        raise ValueError(f"{path}: a caption pool maps each class name to a list of captions")
    reason = text_problem(pool)
    if reason:
        raise ValueError(f"{path}: {reason}")
    return pool


def is_class_dir(p: Path) -> bool:
    return p.is_dir() and not p.name.startswith(".") and p.name not in RESERVED_DIRS


def detect_format(root: str | os.PathLike) -> str:
    """``"folder"``, ``"class-tree"`` or ``"shards"``; ``ValueError`` if ``root`` is none of them."""
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"dataset folder not found: {root}")
    if root.is_file():
        if root.suffix == ".tar":
            return "shards"
        raise ValueError(f"{root}: a dataset is a folder (or a .tar shard), not a file")
    captions = root / CAPTIONS_FILE
    if captions.is_file():
        return "folder"
    if captions.is_symlink() or captions.exists():  # never read as a class tree instead
        what = ("a link to nothing" if not captions.exists() else "a folder" if captions.is_dir()
                else "a special file (a pipe or device)")
        raise ValueError(f"{captions}: is {what}, not a regular file; the folder format reads its entries there")
    if any(root.glob("*.tar")):
        return "shards"
    if any(is_class_dir(p) for p in root.iterdir()):
        return "class-tree"
    raise ValueError(
        f"{root}: not a dataset: expected {CAPTIONS_FILE} (folder format), class sub-folders "
        f"(class tree) or .tar shards"
    )


# ---- a data root in use -----------------------------------------------------------------------
class DataRootLock:
    """A lock on ``root/manifest.json``: shared while a process reads the data set (a training, for
    its whole run), exclusive while ``textok data fetch`` rebuilds ``root``. So a fetch refuses to
    replace the images under a running training (which went on with the new images under the old
    captions, and counted the vanished ones as skipped), and a training refuses to start on a root
    being rebuilt. Only a root with a manifest is ever rebuilt (``data fetch``'s folder rule), so a
    root without one is not locked. The OS drops the lock when its holder dies, even on SIGKILL."""

    def __init__(self, root: str | os.PathLike, exclusive: bool = False, option: str = "--root"):
        self.root, self._fd = Path(root), None
        try:
            import fcntl
        except ImportError:  # no flock (Windows): unlocked
            return
        path = self.root / MANIFEST_FILE
        for _ in range(3):
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError:  # no manifest: nothing a fetch would rebuild
                return
            try:
                fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                from ..errors import FolderLockedError

                if exclusive:
                    raise FolderLockedError(
                        f"{option} {self.root}: in use by another textok process that reads it (a training?); "
                        f"rebuilding it now would change its images under it: wait for it to finish, or fetch "
                        f"into another folder") from None
                raise FolderLockedError(f"{self.root}: being rebuilt by `textok data fetch` in another process; "
                                        f"wait for it to finish, then start again") from None
            try:  # the manifest may have been swapped in between the open and the lock: lock the current one
                same = os.path.samestat(os.fstat(fd), os.stat(path))
            except OSError:
                same = False
            if same:
                self._fd = fd
                return
            os.close(fd)
        from ..errors import FolderLockedError

        raise FolderLockedError(f"{self.root}: its {MANIFEST_FILE} keeps being replaced (a fetch rebuilding it?)")

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def __reduce__(self):  # a spawned DataLoader worker gets an unheld copy: its parent holds the lock
        return _unheld_lock, (str(self.root),)

    def __enter__(self) -> "DataRootLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def __del__(self) -> None:
        self.release()


def _unheld_lock(root: str) -> DataRootLock:
    lock = DataRootLock.__new__(DataRootLock)
    lock.root, lock._fd = Path(root), None
    return lock


# ---- per-sample options -----------------------------------------------------------------------
def set_sample_options(dataset, image_size: int, train: bool, on_bad_sample: str, flip: bool, seed: int,
                       caption_variant: str, min_image_size: int | None) -> None:
    """Check and store the per-sample options every dataset class shares (folders, shards)."""
    check_on_bad_sample(on_bad_sample)
    check_caption_variant(caption_variant)
    dataset.image_size = image_size
    dataset.train = train
    dataset.on_bad_sample = on_bad_sample
    dataset.flip = flip
    dataset.seed = seed
    dataset.caption_variant = caption_variant
    dataset.min_image_size = image_size if min_image_size is None else min_image_size


__all__ = [
    "CAPTIONS_FILE", "CLASS_CAPTIONS_FILE", "HELDOUT_CAPTIONS_FILE", "MANIFEST_FILE", "SHARDS_FILE", "TEXT_CACHE_DIR",
    "IMAGE_EXTENSIONS", "SHARD_IMAGE_EXTS", "RESERVED_DIRS", "ON_BAD_SAMPLE", "BadSamplePolicy", "BadSampleError",
    "BadSampleReport", "DataRootLock", "printable", "check_on_bad_sample", "warn_bad_sample", "json_lines", "text_problem", "write_json_lines", "read_manifest",
    "read_caption_pool", "is_class_dir", "detect_format", "set_sample_options",
]
