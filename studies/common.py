"""What the study drivers share (studies/emoji32/reproduction.py, studies/scenes/run.py): the two arms' config
overrides, the commit a score file records, an OS lock per run, committing score files, a worker's setup and the
command line that starts one.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclasses.dataclass(frozen=True)
class ArmRun:
    """One run of a two-arm study: TexTok or the no-text baseline (the same recipe without text:
    ``model.text_in=none``, no caption dropout) at ``num_tokens`` tokens and ``seed``. A driver's ``Run`` extends
    it (frozen; its own fields have defaults) with ``overrides``, the run's config overrides (``key=value``)."""

    name: str
    arm: str  # "textok" | "baseline"
    num_tokens: int
    seed: int = 0

    @property
    def caption_variant(self) -> str:
        return next((o.split("=", 1)[1] for o in self.overrides if o.startswith("data.caption_variant=")), "full")

    def config_overrides(self) -> list[str]:
        o = [f"model.num_tokens={self.num_tokens}", f"seed={self.seed}"]
        if self.arm == "baseline":
            o += ["model.text_in=none", "data.caption_dropout=0.0"]
        return o + list(self.overrides)


def git_commit() -> str | None:
    """The commit of the code this process runs (``+dirty`` when tracked files differ from it), or None
    outside a git checkout: every score file records it, so runs at different commits can be told apart."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head.stdout.strip() + ("+dirty" if dirty else "")


def flock(path: Path, blocking: bool):
    """An exclusive OS lock on the file ``path`` (created, with its folder): the open file, which holds the lock
    until it is closed (or the process ends), or None if another process holds it and not ``blocking``."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    f = open(path, "a")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        f.close()
        return None
    return f


def commit_scores(path: Path, message: str, cwd: Path, tag: str) -> None:
    """Commit ``path`` (a score file or a folder of them) and nothing else, from ``cwd`` (a folder of the
    repository); retried while another git process holds the index lock. ``tag``: the prefix of the line printed
    when it gives up."""
    for attempt in range(5):
        if subprocess.run(["git", "add", "--", str(path)], cwd=cwd, capture_output=True).returncode == 0:
            r = subprocess.run(["git", "commit", "-m", message, "--", str(path)], cwd=cwd, capture_output=True,
                               text=True)
            if r.returncode == 0 or "nothing to commit" in r.stdout + r.stderr:
                return
        time.sleep(3 + 5 * attempt)
    print(f"[{tag}] could not commit {path}; the scores stay on disk", flush=True)


def module_command(module: str, *args: str) -> list[str]:
    """The command line that runs the study module ``module`` (``"studies.scenes.run"``) in a child process."""
    return [sys.executable, "-m", module, *args]


def child_env(**variables: str) -> dict[str, str]:
    """This process's environment plus ``variables``, with the repository on ``PYTHONPATH``: a worker started by
    ``module_command`` imports ``studies`` from any working directory (its relative paths keep their meaning)."""
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return dict(os.environ, **variables, PYTHONPATH=path)


def worker_setup(threads: int) -> None:
    """A worker process (a driver's ``--job``): its log gets the trainer's line every log_every steps (its speed)
    and resume notes; torch runs ``threads`` threads."""
    import logging

    import torch

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(threads)
