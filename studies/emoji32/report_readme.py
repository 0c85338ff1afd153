"""The README's results table: Table 1's seed means, written between the README's markers."""

from __future__ import annotations

from pathlib import Path

from ..stats import split_label
from .reproduction import REPORT_SPLITS
from .report_tables import COMMAND, TOKENS, compare, mean_sd, significance


def results_block(curves) -> list[str]:
    """The README's results table (between its markers): Table 1's seed means, new-emoji first."""
    out = [f"Printed by `{COMMAND}` from the score files (full report: "
           "[docs/results/reproduction.md](docs/results/reproduction.md)); mean ± std over seeds, Welch p.", "",
           "| split | N | seeds per arm | steps | rFID baseline | rFID TexTok | rFID gain | PSNR gain (dB) |",
           "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for split in REPORT_SPLITS:
        for n in TOKENS:
            c, p = compare(curves, n, split), compare(curves, n, split, "psnr")
            if c is None:
                continue
            out.append(f"| {split_label(split)} | {n} | {min(c['seeds'].values())} | {c['steps']} | {mean_sd(c['baseline'], 1)} "
                       f"| {mean_sd(c['textok'], 1)} | {100 * c['gain']:+.1f}% ({significance(c)}) "
                       f"| {p['difference']:+.2f} ({significance(p)}) |")
    return out


RESULTS_BEGIN = "<!-- results table: studies/emoji32/reproduction_report.py -->"
RESULTS_END = "<!-- end results table -->"


def fill_readme(readme: Path, block: list[str]) -> str:
    """Put ``block`` between the README's results markers; -> what was done (the markers may not exist yet)."""
    if not readme.is_file():
        return f"skipped {readme}: no such file"
    text = readme.read_text()
    if RESULTS_BEGIN not in text or RESULTS_END not in text or text.index(RESULTS_END) < text.index(RESULTS_BEGIN):
        return f"skipped {readme}: it has no '{RESULTS_BEGIN}' ... '{RESULTS_END}' markers to fill"
    head, rest = text.split(RESULTS_BEGIN, 1)
    _, tail = rest.split(RESULTS_END, 1)
    new = head + RESULTS_BEGIN + "\n" + "\n".join(block) + "\n" + RESULTS_END + tail
    if new == text:
        return f"{readme}: results table unchanged"
    from textok.io import write_text_atomic

    write_text_atomic(readme, new)
    return f"wrote {readme} (results table)"
