"""What every evaluation report shares: a status line before a quiet phase, the cost of an FID, the report files."""

from __future__ import annotations

import sys
from pathlib import Path

from tqdm.auto import tqdm


def status(progress: bool, message: str) -> None:
    """One line on stderr before a phase that shows no bar (loading networks, a matrix square
    root), so a long evaluation never goes quiet; silent with ``progress=False``."""
    if progress:
        tqdm.write(message, file=sys.stderr)
        sys.stderr.flush()


def fid_note(n: int) -> str:
    """What an FID over ``n`` images costs (``frechet_distance_to_features``), for the status line."""
    return "seconds" if n <= 2048 else "a 2048 x 2048 matrix square root: minutes on a CPU"


def write_report(out: Path, stem: str, report: dict) -> None:
    """``out/<stem>.json`` (the report) and ``out/<stem>.md`` (its ``markdown``), each written atomically."""
    from ..io import write_json_atomic, write_text_atomic

    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / f"{stem}.json", report)
    write_text_atomic(out / f"{stem}.md", report["markdown"])


__all__ = ["status", "fid_note", "write_report"]
