"""The run folder, tinylm's unit of work, and the one place that knows its layout:

    <run>/
      .hydra/config.yaml      the composed config (a resume's overrides merged in)
      .hydra/overrides.yaml   the command-line overrides that made the run
      .hydra/hydra.yaml       Hydra's own record (the job's number in a sweep)
      checkpoints/last.ckpt   the newest state: resume= continues it
      checkpoints/best-step0000300-val2.7367.ckpt   the best state by val/loss
      csv/metrics.csv         one row per logged step (the CSV logger)
      csv/hparams.yaml        the module's hyper-parameters and the config (the CSV logger)
      samples.jsonl           generation samples at every validation
      loss_curve.png          train and validation loss against the step
      result.json             how the run ended (tinylm.runs.results)
      train.log               the log, tracebacks included
      .lock                   held by the process training in the folder (tinylm.runs.lock)

Everything else names these files through a RunFolder; the conf files through the
`${run_path:<folder>,<name>}` resolver (tinylm.runs.claim).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from tinylm.errors import ConfigError
from tinylm.utils.files import keep_csv_rows_before, keep_records_before, write_atomically

CHECKPOINTS = "checkpoints"
LAST_CHECKPOINT = "last.ckpt"
# ModelCheckpoint's filename for the best checkpoint (conf/callbacks/default.yaml): the step and
# val/loss it was saved at, e.g. best-step0000300-val2.7367.ckpt.
BEST_CHECKPOINT_NAME = "best-step{step:07d}-val{val/loss:.4f}"
BEST_CHECKPOINT_GLOB = "best-*.ckpt"
VAL_LOSS_IN_NAME = re.compile(r"val(\d+(?:\.\d+)?)")
LATEST = "latest"  # resume=latest: the run whose last.ckpt is newest


@dataclass(frozen=True)
class RunFolder:
    path: Path

    def __init__(self, path: str | Path) -> None:
        object.__setattr__(self, "path", Path(path))

    # The layout, as named paths (also what ${run_path:<folder>,<name>} resolves).
    @property
    def hydra(self) -> Path:
        return self.path / ".hydra"

    @property
    def config(self) -> Path:
        return self.hydra / "config.yaml"

    @property
    def overrides(self) -> Path:
        return self.hydra / "overrides.yaml"

    @property
    def hydra_config(self) -> Path:
        return self.hydra / "hydra.yaml"

    @property
    def checkpoints(self) -> Path:
        return self.path / CHECKPOINTS

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoints / LAST_CHECKPOINT

    @property
    def best_checkpoint_name(self) -> str:
        return BEST_CHECKPOINT_NAME

    @property
    def csv(self) -> Path:
        return self.path / "csv"

    @property
    def metrics(self) -> Path:
        return self.csv / "metrics.csv"

    @property
    def hparams(self) -> Path:
        return self.csv / "hparams.yaml"

    @property
    def samples(self) -> Path:
        return self.path / "samples.jsonl"

    @property
    def loss_curve(self) -> Path:
        return self.path / "loss_curve.png"

    @property
    def result(self) -> Path:
        return self.path / "result.json"

    @property
    def log(self) -> Path:
        return self.path / "train.log"

    @property
    def lock(self) -> Path:
        return self.path / ".lock"

    # What the folder holds.
    def holds_a_run(self) -> bool:
        """Whether a run has already trained here: it has a result or a checkpoint."""
        return self.result.is_file() or any(self.checkpoints.glob("*.ckpt"))

    def cut_back_to(self, step: int) -> None:
        """Drop what the appended files recorded after optimizer step `step`, the step of the
        checkpoint a run resumes from: the resumed run records those steps again, and a run
        killed after its checkpoint had recorded some of them already. The one rule for every
        appended file; the loss curve's history needs none, being part of the checkpoint.

        metrics.csv numbers its rows as Lightning does, by the optimizer steps taken before
        the one that ends (the validation after step 20 is row 19); samples.jsonl by the steps
        taken (20)."""
        keep_csv_rows_before(self.metrics, step)
        keep_records_before(self.samples, step + 1)

    def read_result(self) -> dict | None:
        """The record the run wrote (result.json), or None when it has not written one (yet)."""
        return json.loads(self.result.read_text()) if self.result.is_file() else None

    def write_result(self, record: dict) -> None:
        write_atomically(self.result, json.dumps(record, indent=2) + "\n")

    # Creating and opening.
    def refuse_if_it_holds_a_run(self) -> None:
        """A new run trains in a folder of its own: one that holds a run is one sentence."""
        if self.holds_a_run():
            raise ConfigError(
                f"{self.path} holds a run already; continue it with resume={self.path}, or "
                "leave hydra.run.dir out to train in a new folder."
            )

    @classmethod
    def to_resume(cls, resume: str, runs_folder: str | Path) -> RunFolder:
        """The run folder that `resume=` names: a folder, or `latest`, the run under
        `runs_folder` whose last.ckpt is the newest (a run that never checkpointed has nothing
        to resume)."""
        if resume == LATEST:
            last_checkpoints = (
                Path(runs_folder).expanduser().glob(f"*/{CHECKPOINTS}/{LAST_CHECKPOINT}")
            )
            runs = [run for run in map(run_folder_of, last_checkpoints) if run.config.is_file()]
            if not runs:
                raise ConfigError(
                    f"resume=latest: no run under {runs_folder} has a "
                    f"{CHECKPOINTS}/{LAST_CHECKPOINT} to resume from; give the run folder, "
                    "resume=<folder>."
                )
            newest = max(runs, key=lambda run: run.last_checkpoint.stat().st_mtime_ns)
            return cls(newest.path.resolve())
        run = cls(Path(resume).expanduser())
        if run.path.is_file():
            raise ConfigError(
                f"resume={resume} is a file; resume takes a run folder (to start a new run from "
                "a checkpoint file, use ckpt_path=)."
            )
        if not run.config.is_file():
            raise ConfigError(
                f"resume={resume} is not a run folder (it has no "
                f"{run.config.relative_to(run.path)}); give a folder that scripts/train.py "
                "wrote, e.g. outputs/train/runs/<run>, or resume=latest."
            )
        if not run.last_checkpoint.is_file():
            raise ConfigError(
                f"resume={resume}: the run has no {CHECKPOINTS}/{LAST_CHECKPOINT} (it stopped "
                "before its first validation), so there is nothing to resume; start it again."
            )
        return cls(run.path.resolve())


def runs_under(root: Path, having: str) -> list[RunFolder]:
    """The run folders at or under `root` that hold the file `having` names in the layout
    (e.g. "metrics"), in the order of their paths."""
    relative = getattr(RunFolder(""), having)  # e.g. csv/metrics.csv
    found = sorted(root.rglob(str(relative)))
    return [RunFolder(path.parents[len(relative.parts) - 1]) for path in found]


def val_loss_in_name(path: Path) -> float:
    found = VAL_LOSS_IN_NAME.search(path.stem)
    return float(found.group(1)) if found else float("inf")


def checkpoints_in(folder: Path) -> list[Path]:
    """The checkpoints a run folder (or a folder of checkpoints) offers to load, in order of
    preference: its best-*.ckpt, lowest val/loss first, then last.ckpt."""
    run = RunFolder(folder)
    # A folder of checkpoints (a run's checkpoints/, or one of the user's) is read as one.
    checkpoints = run.checkpoints if run.checkpoints.is_dir() else folder
    best = sorted(checkpoints.glob(BEST_CHECKPOINT_GLOB), key=val_loss_in_name)
    last = checkpoints / LAST_CHECKPOINT
    return best + ([last] if last.is_file() else [])


def run_folder_of(checkpoint: Path) -> RunFolder | None:
    """The run folder a checkpoint file belongs to, or None for a file elsewhere."""
    if checkpoint.parent.name != CHECKPOINTS:
        return None
    return RunFolder(checkpoint.parent.parent)
