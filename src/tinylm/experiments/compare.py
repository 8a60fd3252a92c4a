"""Compare runs offline: the loss curves of every run on one PNG (training loss as a thin line,
validation loss as markers, the chance level ln V dotted), and a table
(`python scripts/compare.py`).

A folder is a run when it holds csv/metrics.csv (the CSV logger's, on by default); any other
folder is searched for runs, so a sweep folder stands for all of its jobs.
"""

from __future__ import annotations

import csv
import itertools
import math
import statistics
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import torch
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from omegaconf import OmegaConf

from tinylm.errors import TinyLMError
from tinylm.experiments.tables import loss_text, markdown_table, varying_overrides
from tinylm.model import GPT, GPTConfig
from tinylm.runs.folder import RunFolder, runs_under
from tinylm.utils.files import atomic_write

HEADER = ["run", "best val/loss", "at step", "final val/loss", "final val/bpb", "tokens/s",
          "parameters", "folder"]  # fmt: skip
# Runs that reach the same losses draw the same curve: each gets its own marker and dash
# pattern, so a curve drawn over another still shows both.
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
DASHES = ["-", "--", "-.", ":"]


@dataclass
class Run:
    folder: Path
    overrides: list[str]
    val: list[tuple[int, float]]  # (optimizer step, val/loss)
    train: list[tuple[int, float]]  # (optimizer step, train/loss), every logging step
    final_bpb: float | None = None
    tokens_per_sec: float | None = None  # median of the logged training throughput
    parameters: int | None = None
    vocab_size: int | None = None  # for the chance level, ln V
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
        rows = list(csv.DictReader(handle))

    def points(metric: str) -> list[tuple[int, float]]:
        # Lightning logs a metric with the number of optimizer steps before the last one;
        # + 1 is the step the weights were at, as in the run's loss_curve.png.
        return [(int(row["step"]) + 1, float(row[metric])) for row in rows if row.get(metric)]

    bpb = [float(row["val/bpb"]) for row in rows if row.get("val/bpb")]
    throughput = [float(r["train/tokens_per_sec"]) for r in rows if r.get("train/tokens_per_sec")]
    overrides = list(OmegaConf.load(run.overrides)) if run.overrides.is_file() else []
    result = run.read_result() or {}
    model_config = saved_model_config(run.hparams)
    return Run(
        run.path, overrides, points("val/loss"), points("train/loss"),
        final_bpb=bpb[-1] if bpb else None,
        tokens_per_sec=statistics.median(throughput) if throughput else None,
        parameters=parameter_count(model_config) if model_config else None,
        vocab_size=model_config["vocab_size"] if model_config else None,
        seconds=result.get("seconds"), steps=result.get("steps"),
    )  # fmt: skip


def saved_model_config(hparams_file: Path) -> dict | None:
    """The model config the CSV logger saved with the run, if it did."""
    if not hparams_file.is_file():
        return None
    model_config = OmegaConf.load(hparams_file).get("model_config")
    return OmegaConf.to_container(model_config) if model_config is not None else None


def parameter_count(model_config: dict) -> int:
    with torch.device("meta"):  # the shapes alone, no memory
        return GPT(GPTConfig(**model_config)).num_parameters()


def compare(folders: list[str], output: Path, target: float | None = None) -> str:
    """Draw every run's losses against the step into `output`; return the table, with the
    steps (and seconds) each run took to reach the val/loss `target` when one is given."""
    runs = sorted(find_runs(folders), key=lambda r: r.best[1] if r.best else float("inf"))
    # A run is named by the overrides that set it apart from the others, else by its folder.
    differences = varying_overrides([run.overrides for run in runs]) if len(runs) > 1 else [[]]
    labels = [
        " ".join(diff) or run.folder.name for diff, run in zip(differences, runs, strict=True)
    ]

    figure = draw_curves(runs, labels)
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


def draw_curves(runs: list[Run], labels: list[str]) -> Figure:
    """Every run's training loss (thin) and validation loss (markers) in one colour per run,
    and a dotted line at ln V for each vocabulary size: the loss of a model that knows nothing."""
    # Not pyplot: no global state, no display backend. The legends go under the curves, where
    # they hide none of them; constrained layout makes room for them.
    figure = Figure(figsize=(10, 6 + 0.2 * len(runs)), layout="constrained")
    axes = figure.subplots()
    colours = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    styles = zip(*(itertools.cycle(c) for c in (colours, MARKERS, DASHES)), strict=False)
    for index, (run, label, (colour, marker, dashes)) in enumerate(
        zip(runs, labels, styles, strict=False)
    ):
        best = f" (best {run.best[1]:.3f})" if run.best else ""
        size = 5 + 3 * (len(runs) - 1 - index) / max(1, len(runs) - 1)  # earlier runs larger
        if run.train:
            axes.plot(*zip(*run.train, strict=True), color=colour, linewidth=0.8, alpha=0.45)
        if run.val:
            # Hollow markers of different sizes: points at the same place nest, none hidden.
            axes.plot(*zip(*run.val, strict=True), color=colour, marker=marker, linestyle=dashes,
                      markersize=size, markerfacecolor="none", markeredgewidth=1.5,
                      label=label + best)  # fmt: skip
    for size in sorted({run.vocab_size for run in runs if run.vocab_size}):
        chance = math.log(size)
        axes.axhline(chance, color="grey", linestyle=":", linewidth=1)
        axes.annotate(f"chance: ln {size:,} = {chance:.2f}", (0.005, chance),
                      xycoords=("axes fraction", "data"), color="grey", va="bottom")  # fmt: skip
    axes.set_xlabel("optimizer step")
    axes.set_ylabel("cross-entropy loss (nats/token)")
    axes.grid(alpha=0.3)
    key = [Line2D([], [], color="grey", linewidth=0.8, alpha=0.6, label="training loss (thin)"),
           Line2D([], [], color="grey", marker="o", markerfacecolor="none",
                  label="validation loss (markers)")]  # fmt: skip
    axes.legend(handles=key, fontsize="small", loc="upper right")
    figure.legend(loc="outside lower center", fontsize="small", title="runs, best first")
    return figure
