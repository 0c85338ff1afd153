"""Model folders on the Hugging Face Hub: a repo id -> a folder in the Hub's cache, and a folder -> a repo.

A model folder is ``config.json`` + ``model.safetensors`` (``textok.io``). ``resolve_folder(name)``
returns ``name`` if it is a folder; otherwise it takes ``name`` for a Hub repo id (``"org/name"``)
and downloads, with ``huggingface_hub.snapshot_download``, only those two kinds of file
(``ALLOW_PATTERNS``: nothing that could be unpickled) into the Hub's cache. A generation folder
(``textok.generation``) passes its own patterns: JSON and safetensors files only, in subfolders too. The environment is read
at each call, not when ``huggingface_hub`` was imported: ``HF_HUB_CACHE`` (else ``HF_HOME/hub``)
picks the cache, and with ``HF_HUB_OFFLINE=1`` the cached snapshot is used and the network never is.
``push_folder(folder, repo_id)`` creates the repo if needed and uploads the same files.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .io import CONFIG_NAME

#: what is downloaded and uploaded: the config and safetensors weights, never a pickle
ALLOW_PATTERNS = [CONFIG_NAME, "*.safetensors"]
#: a Hub repo id: "org/name" (letters, digits, "-", "_", "."); a bare "name" is taken for a local folder
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")


def _truthy(value: str | None) -> bool:
    return (value or "").strip().upper() in ("1", "ON", "YES", "TRUE")


def hub_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) is set: use the cache, never the network."""
    return _truthy(os.environ.get("HF_HUB_OFFLINE")) or _truthy(os.environ.get("TRANSFORMERS_OFFLINE"))


def hub_cache_dir() -> Path | None:
    """The Hub's cache as the environment names it now (``HF_HUB_CACHE``, else ``HF_HOME/hub``);
    None: ``huggingface_hub``'s default."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    return None


def is_repo_id(name: str) -> bool:
    """``name`` reads as a Hub repo id ("org/name") and not as a local path: it is not there, and neither is its
    first component (``runs/model`` with a ``runs/`` folder here is a missing local folder, not a repo)."""
    if not _REPO_ID.match(name) or name.startswith((".", "~")) or Path(name).exists():
        return False
    return not Path(name.split("/")[0]).is_dir()


def resolve_folder(name_or_path: str | os.PathLike, revision: str | None = None,
                   cache_dir: str | os.PathLike | None = None, allow_patterns: list[str] = ALLOW_PATTERNS,
                   required: str = CONFIG_NAME) -> Path:
    """A local model folder for ``name_or_path``: a path that is not a Hub repo id as is (the loader says
    what is missing there), else the repo's snapshot in the Hub's cache (downloaded unless offline; only the
    files ``allow_patterns`` match, and ``required`` must be among them); ``FileNotFoundError`` when the Hub
    has no such repo or, offline, the cache has no snapshot of it."""
    path = Path(name_or_path).expanduser()
    name = str(name_or_path)
    if path.is_dir() or not isinstance(name_or_path, str) or not is_repo_id(name):
        return path
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError

    cache = Path(cache_dir).expanduser() if cache_dir is not None else hub_cache_dir()
    offline = hub_offline()
    try:
        folder = snapshot_download(name, revision=revision, cache_dir=cache, allow_patterns=allow_patterns,
                                   local_files_only=offline)
    except LocalEntryNotFoundError:
        where = cache if cache is not None else "the Hub cache"
        why = "HF_HUB_OFFLINE is set and" if offline else "the Hub could not be reached and"
        raise FileNotFoundError(f"{name}: no such folder, and {why} {where} holds no snapshot of the repo "
                                f"{name!r}{f' at {revision!r}' if revision else ''}") from None
    except RepositoryNotFoundError:
        raise FileNotFoundError(f"{name}: no such folder, nor a Hub repo (or it is private: log in with "
                                f"`hf auth login`)") from None
    except HfHubHTTPError as e:
        raise FileNotFoundError(f"{name}: no such folder, and the Hub refused the download ({e})") from None
    folder = Path(folder)
    if not (folder / required).is_file():
        raise FileNotFoundError(f"{name}: the Hub repo has no {required} (snapshot {folder})")
    return folder


def push_folder(folder: str | os.PathLike, repo_id: str, *, private: bool | None = None, token: str | None = None,
                revision: str | None = None, commit_message: str | None = None, create_pr: bool = False,
                allow_patterns: list[str] = ALLOW_PATTERNS):
    """Upload a model folder's ``config.json`` and ``*.safetensors`` (or the files ``allow_patterns`` match) to the
    Hub repo ``repo_id`` (created if missing); returns ``huggingface_hub``'s ``CommitInfo``."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    return api.upload_folder(repo_id=repo_id, folder_path=str(folder), revision=revision, create_pr=create_pr,
                             commit_message=commit_message or "Upload TexTok tokenizer",
                             allow_patterns=allow_patterns)


__all__ = ["resolve_folder", "push_folder", "hub_offline", "hub_cache_dir", "is_repo_id", "ALLOW_PATTERNS"]
