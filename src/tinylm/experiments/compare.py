"""Compare runs offline: the validation-loss curves of every run on one PNG, and a table
(`python scripts/compare.py`).

A folder is a run when it holds csv/metrics.csv (the CSV logger's, on by default); any other
folder is searched for runs, so a sweep folder stands for all of its jobs.
"""

from __future__ import annotations

import csv
import statistics
from dataclasses import dataclass
from pathlib import Path

import torch
from matplotlib.figure import Figure
from omegaconf import OmegaConf

from tinylm.errors import TinyLMError
from tinylm.experiments.tables import loss_text, markdown_table, varying_overrides
from tinylm.model import GPT, GPTConfig
from tinylm.runs.folder import RunFolder, runs_under
from tinylm.utils.files import atomic_write

HEADER = ["run", "best val/loss", "at step", "final val/loss", "final val/bpb", "tokens/s",
          "parameters", "folder"]  # fmt: skip


@dataclass
class Run:
    folder: Path
    overrides: list[str]
    val: list[tuple[int, float]]  # (optimizer step, val/loss)
    final_bpb: float | None = None
    tokens_per_sec: float | None = None  # median of the logged training throughput
    parameters: int | None = None
    seconds: float | None = None  # the run's training time and steps, from its result.json
    steps: int | None = None

    @property
    def best(self) -> tuple[int, float] | None:
        return min(self.val, key=lambda point: point[1]) if self.val else None

    def first_step_at(self, target: float) -> int | None:
        """The first validated step whose val/loss is at or below `target`."""
        return next((step for step, loss in self.val if loss <= target), None)


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
        rows = list(csv.DictReader(handle))
    val = [(int(row["step"]) + 1, float(row["val/loss"])) for row in rows if row.get("val/loss")]
    bpb = [float(row["val/bpb"]) for row in rows if row.get("val/bpb")]
    throughput = [float(r["train/tokens_per_sec"]) for r in rows if r.get("train/tokens_per_sec")]
    overrides = list(OmegaConf.load(run.overrides)) if run.overrides.is_file() else []
    result = run.read_result() or {}
    return Run(
        run.path, overrides, val,
        final_bpb=bpb[-1] if bpb else None,
        tokens_per_sec=statistics.median(throughput) if throughput else None,
        parameters=parameter_count(run.hparams),
        seconds=result.get("seconds"), steps=result.get("steps"),
    )  # fmt: skip


def parameter_count(hparams_file: Path) -> int | None:
    """The model's parameters, from the model config the CSV logger saved with the run."""
    if not hparams_file.is_file():
        return None
    model_config = OmegaConf.load(hparams_file).get("model_config")
    if model_config is None:
        return None
    with torch.device("meta"):  # the shapes alone, no memory
        return GPT(GPTConfig(**OmegaConf.to_container(model_config))).num_parameters()


def compare(folders: list[str], output: Path, target: float | None = None) -> str:
    """Draw every run's val/loss against the step into `output`; return the table, with the
    steps (and seconds) each run took to reach the val/loss `target` when one is given."""
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

    header = HEADER.copy()
    if target is not None:
        header[-1:-1] = [f"steps to {target}", f"s to {target} (pro rata)"]
    rows = []
    for run, label in zip(runs, labels, strict=True):
        step, loss = run.best or ("-", None)
        final = run.val[-1][1] if run.val else None
        row = [label, loss_text(loss), str(step), loss_text(final), loss_text(run.final_bpb),
               optional(run.tokens_per_sec, "{:,.0f}"),
               optional(run.parameters, "{:,}")]  # fmt: skip
        if target is not None:
            reached = run.first_step_at(target)
            row += [optional(reached, "{}"), optional(seconds_to(run, reached), "{:.1f}")]
        rows.append([*row, str(run.folder)])
    return markdown_table(header, rows)


def seconds_to(run: Run, step: int | None) -> float | None:
    """The run's time to `step`, pro rata of its whole training time (validations included)."""
    if step is None or not run.seconds or not run.steps:
        return None
    return run.seconds * step / run.steps


def optional(value, form: str) -> str:
    return "-" if value is None else form.format(value)
