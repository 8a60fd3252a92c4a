"""Compare runs offline: the validation-loss curves of every run on one PNG, and a table
(`python scripts/compare.py`).

A folder is a run when it holds csv/metrics.csv (the CSV logger's, on by default); any other
folder is searched for runs, so a sweep folder stands for all of its jobs.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure
from omegaconf import OmegaConf

from tinylm.errors import TinyLMError
from tinylm.experiments.tables import loss_text, markdown_table, varying_overrides
from tinylm.runs.folder import RunFolder, runs_under
from tinylm.utils.files import atomic_write

HEADER = ["run", "best val/loss", "at step", "final val/loss", "folder"]


@dataclass
class Run:
    folder: Path
    overrides: list[str]
    val: list[tuple[int, float]]  # (optimizer step, val/loss)

    @property
    def best(self) -> tuple[int, float] | None:
        return min(self.val, key=lambda point: point[1]) if self.val else None


def find_runs(folders: list[str]) -> list[Run]:
    runs = []
    for name in folders:
        folder = Path(name)
        if not folder.is_dir():
            raise TinyLMError(f"{name} is not a folder; give run or sweep folders.")
        runs += [read_run(run) for run in runs_under(folder, "metrics")]
    if not runs:
        metrics = RunFolder("").metrics
        raise TinyLMError(
            f"No run with {metrics} under {', '.join(folders)}; compare reads the CSV logger's "
            "metrics (logger=csv or logger=many)."
        )
    return runs


def read_run(run: RunFolder) -> Run:
    with open(run.metrics) as handle:
        # Lightning logs a validation with the number of optimizer steps before the last one;
        # + 1 is the step the weights were validated at, as in the run's loss_curve.png.
        val = [(int(row["step"]) + 1, float(row["val/loss"]))
               for row in csv.DictReader(handle) if row.get("val/loss")]  # fmt: skip
    overrides = list(OmegaConf.load(run.overrides)) if run.overrides.is_file() else []
    return Run(run.path, overrides, val)


def compare(folders: list[str], output: Path) -> str:
    """Draw every run's val/loss against the step into `output`; return the table."""
    runs = sorted(find_runs(folders), key=lambda r: r.best[1] if r.best else float("inf"))
    # A run is named by the overrides that set it apart from the others, else by its folder.
    differences = varying_overrides([run.overrides for run in runs]) if len(runs) > 1 else [[]]
    labels = [
        " ".join(diff) or run.folder.name for diff, run in zip(differences, runs, strict=True)
    ]

    figure = Figure(figsize=(9, 5.5))  # not pyplot: no global state, no display backend
    axes = figure.subplots()
    for run, label in zip(runs, labels, strict=True):
        if run.val:
            axes.plot(*zip(*run.val, strict=True), "o-", markersize=3, label=label)
    axes.set_xlabel("optimizer step")
    axes.set_ylabel("validation loss (nats/token)")
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    figure.tight_layout()
    with atomic_write(output, "wb", folder_key="output") as handle:
        figure.savefig(handle, dpi=120, format="png")

    rows = []
    for run, label in zip(runs, labels, strict=True):
        step, loss = run.best or ("-", None)
        final = run.val[-1][1] if run.val else None
        rows.append([label, loss_text(loss), str(step), loss_text(final), str(run.folder)])
    return markdown_table(HEADER, rows)
