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

from tinylm.errors import ConfigError, TinyLMError
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
    seed: int | None = None  # from the run's composed config

    @property
    def final(self) -> float | None:
        return self.val[-1][1] if self.val else None

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
    config = OmegaConf.load(run.config) if run.config.is_file() else {}
    return Run(
        run.path, overrides, points("val/loss"), points("train/loss"),
        final_bpb=bpb[-1] if bpb else None,
        tokens_per_sec=statistics.median(throughput) if throughput else None,
        parameters=parameter_count(model_config) if model_config else None,
        vocab_size=model_config["vocab_size"] if model_config else None,
        seconds=result.get("seconds"), steps=result.get("steps"), seed=config.get("seed"),
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


def compare(
    folders: list[str], output: Path, target: float | None = None, baseline: str | None = None
) -> str:
    """Draw every run's losses against the step into `output`; return the table, with the
    steps (and seconds) each run took to reach the val/loss `target` when one is given, and,
    when the runs span several seeds, the table over seeds (see `seeds_table`)."""
    runs = sorted(find_runs(folders), key=lambda r: r.best[1] if r.best else float("inf"))
    # A run is named by the overrides that set it apart from the others, else by its folder.
    differences = varying_overrides([run.overrides for run in runs]) if len(runs) > 1 else [[]]
    labels = [
        " ".join(diff) or run.folder.name for diff, run in zip(differences, runs, strict=True)
    ]
    settings = settings_of(runs)
    if baseline is not None:
        baseline = baseline_setting(settings, baseline)

    figure = draw_curves(runs, labels)
    with atomic_write(output, "wb", folder_key="output") as handle:
        figure.savefig(handle, dpi=120, format="png")

    header = HEADER.copy()
    if target is not None:
        header[-1:-1] = [f"steps to {target}", f"s to {target} (pro rata)"]
    rows = []
    for run, label in zip(runs, labels, strict=True):
        step, loss = run.best or ("-", None)
        row = [label, loss_text(loss), str(step), loss_text(run.final), loss_text(run.final_bpb),
               optional(run.tokens_per_sec, "{:,.0f}"),
               optional(run.parameters, "{:,}")]  # fmt: skip
        if target is not None:
            reached = run.first_step_at(target)
            row += [optional(reached, "{}"), optional(seconds_to(run, reached), "{:.1f}")]
        rows.append([*row, str(run.folder)])
    table = markdown_table(header, rows)
    if baseline is not None or len({run.seed for run in runs}) > 1:
        table += "\n\n" + seeds_table(settings, target, baseline)
    return table


def settings_of(runs: list[Run]) -> dict[str, list[Run]]:
    """The runs grouped by setting: by the overrides that tell them apart, the seed aside."""
    names = varying_overrides([without_seed(run.overrides) for run in runs])
    settings: dict[str, list[Run]] = {}
    for name, run in zip(names, runs, strict=True):
        settings.setdefault(" ".join(name) or run.folder.name, []).append(run)
    return settings


def baseline_setting(settings: dict[str, list[Run]], baseline: str) -> str:
    """The setting `baseline` names: by its whole name, or by the value of its one override
    (baseline=none for +ablation=none, which Hydra's command line cannot take unquoted)."""

    def value(name: str) -> str | None:
        return name.partition("=")[2] if " " not in name else None

    named = [name for name in settings if baseline in (name, value(name))]
    if len(named) != 1:
        raise ConfigError(
            f"baseline={baseline} names {'several' if named else 'none'} of the settings compared "
            f"({', '.join(settings)}); give one of them, e.g. baseline=none for +ablation=none."
        )
    return named[0]


def without_seed(overrides: list[str]) -> list[str]:
    return [o for o in overrides if o.lstrip("+~").split("=")[0] != "seed"]


def seeds_table(settings: dict[str, list[Run]], target: float | None, baseline: str | None) -> str:
    """One row per setting: its seeds, the mean final val/loss and bits per byte with their
    spread (largest minus smallest over the seeds), and with a `baseline` (a setting's name, e.g.
    +ablation=none) the difference from it seed by seed (mean and spread of run − baseline run
    of the same seed: paired, so a seed's own luck cancels). Best mean first."""
    base = {run.seed: run.final for run in settings.get(baseline, [])}

    header = ["setting", "seeds", "final val/loss: mean", "spread"]
    if baseline is not None:
        header += [f"− {baseline}: mean (paired)", "spread"]
    header += ["final val/bpb: mean", "spread"]
    if target is not None:
        header += [f"steps to {target} (each seed)", f"s to {target} (median)"]
    header += ["tokens/s (median)", "parameters"]
    rows = []
    for name, runs in settings.items():
        group = sorted(runs, key=lambda run: (run.seed is None, run.seed or 0))
        finals = [run.final for run in group if run.final is not None]
        seeds = ", ".join(optional(run.seed, "{}") for run in group)
        row = [name, seeds, *mean_and_spread(finals)]
        if baseline is not None:
            paired = [run.final - base[run.seed] for run in group
                      if run.final is not None and base.get(run.seed) is not None]  # fmt: skip
            row += mean_and_spread(paired, signed=True)
        row += mean_and_spread([run.final_bpb for run in group if run.final_bpb is not None])
        if target is not None:
            steps = [run.first_step_at(target) for run in group]
            seconds = [seconds_to(run, step) for run, step in zip(group, steps, strict=True)]
            row += [" / ".join(optional(step, "{}") for step in steps),
                    optional(median_of(seconds), "{:.1f}")]  # fmt: skip
        parameters = sorted({optional(run.parameters, "{:,}") for run in group})
        row += [optional(median_of([run.tokens_per_sec for run in group]), "{:,.0f}"),
                " / ".join(parameters)]  # fmt: skip
        rows.append((statistics.mean(finals) if finals else float("inf"), row))
    rows.sort(key=lambda pair: pair[0])
    return markdown_table(header, [row for _, row in rows])


def mean_and_spread(values: list[float], signed: bool = False) -> list[str]:
    if not values:
        return ["-", "-"]
    mean = f"{statistics.mean(values):+.4f}" if signed else loss_text(statistics.mean(values))
    return [mean, f"{max(values) - min(values):.4f}"]


def median_of(values: list[float | None]) -> float | None:
    """The median when every run has a value: a run that never got one makes it unknown."""
    return None if not values or None in values else statistics.median(values)


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
