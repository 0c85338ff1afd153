"""The statistics and number formats the study reports share, and the emoji splits' labels.

- ``welch_p``: the two-sided Welch t-test between two arms' seeds; ``mean_std``: a sample's mean and std;
- ``fmt`` / ``pm``: a number (``"–"`` for none), a mean ± std, as every table prints them;
- ``SPLIT_LABELS``, ``SPLIT_MEASURES``: the emoji splits named for what they measure, from the library's one
  description of them (``textok.pretrained.EMOJI_SPLITS``): ``"new emoji (`val_unseen`)"``, ``"recall (`val`)"``.
"""

from __future__ import annotations

import math
import statistics
from typing import Sequence

from textok.pretrained import EMOJI_SPLITS

#: split -> what it measures ("new" | "recall") and its label in the reports
SPLIT_MEASURES = {split: s["measures"] for split, s in EMOJI_SPLITS.items()}
SPLIT_LABELS = {split: f"{s['name']} (`{split}`)" for split, s in EMOJI_SPLITS.items()}


def split_label(split: str) -> str:
    """The split named for what it measures (``SPLIT_LABELS``), else its name as code."""
    return SPLIT_LABELS.get(split, f"`{split}`")


def welch_p(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Two-sided Welch t-test p-value of two samples (scipy), None with fewer than 2 values in either or no
    variance in both (the test is undefined)."""
    if min(len(a), len(b)) < 2 or (statistics.pstdev(a) == 0 and statistics.pstdev(b) == 0):
        return None
    from scipy.stats import ttest_ind

    return float(ttest_ind(list(a), list(b), equal_var=False).pvalue)


def mean_std(xs: Sequence[float]) -> tuple[float | None, float | None]:
    """(mean, sample std) of ``xs``; the std is None for one value, both are None for none."""
    if not xs:
        return None, None
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else None)


def fmt(x, digits: int = 2, sign: bool = False) -> str:
    """``x`` to ``digits`` decimals (with its sign when ``sign``); ``"–"`` for None or NaN."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def pm(mean, std, digits: int = 2) -> str:
    """``"mean ± std"``, or the mean alone where there is no std (one seed)."""
    return fmt(mean, digits) + (f" ± {fmt(std, digits)}" if std is not None else "")


def fmt_p(p) -> str:
    """A p-value with two significant digits (0.00017, 0.048), "–" when there is none."""
    return "–" if p is None else f"{p:.2g}"


def join_and(items: list[str]) -> str:
    """``A``, ``A and B``, ``A, B and C``."""
    return " and ".join(items) if len(items) < 3 else ", ".join(items[:-1]) + " and " + items[-1]


__all__ = ["SPLIT_MEASURES", "SPLIT_LABELS", "split_label", "welch_p", "mean_std", "fmt", "pm", "fmt_p", "join_and"]
