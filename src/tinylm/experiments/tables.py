"""Tables of runs, shared by the sweep summary and scripts/compare.py."""

from __future__ import annotations

import math


def varying_overrides(overrides_per_run: list[list[str]]) -> list[list[str]]:
    """For each run, the overrides that tell it apart from the others: those not given
    identically to every run (all of them when there is only one run)."""
    if len(overrides_per_run) < 2:
        return overrides_per_run
    shared = set.intersection(*(set(overrides) for overrides in overrides_per_run))
    return [[o for o in overrides if o not in shared] for overrides in overrides_per_run]


def loss_text(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.4f}"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub-flavoured Markdown table, its columns padded so it reads in a terminal too."""
    cells = [header, *rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row: list[str]) -> str:
        padded = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        return "| " + " | ".join(padded) + " |"

    separator = "|" + "|".join("-" * (width + 2) for width in widths) + "|"
    return "\n".join([line(header), separator, *(line(row) for row in rows)])
