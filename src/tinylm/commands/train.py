"""`python scripts/train.py`: train, and record how it went in <run folder>/result.json.

In a sweep (Hydra multirun) one job's failure must not end the others. Hydra's basic sweeper
re-raises a failed job's exception once its batch is done, which also skips the summary at the
end, and the Optuna sweeper stops at a failed trial. So in a sweep a job that raises, or whose
val/loss is not a number, is logged with its traceback, recorded as failed (or diverged),
and returns None: no objective value, which the Optuna sweeper records as a failed trial before
sampling the next. Outside a sweep the exception reaches the entry point as before.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from omegaconf import DictConfig

from tinylm import training
from tinylm.commands import find_user_error
from tinylm.commands.settings import TrainSettings
from tinylm.errors import ConfigError, DivergenceError, WriteError
from tinylm.runs.folder import RunFolder
from tinylm.runs.lock import hold_run_folder
from tinylm.runs.results import (
    COMPLETED,
    DIVERGED,
    FAILED,
    INTERRUPTED,
    finite_or_none,
    job_record,
    write_result,
)
from tinylm.runs.resume import open_resume, run_overrides
from tinylm.runs.signals import Interrupted
from tinylm.schema import check_settings
from tinylm.utils.hydra import command_line_overrides, in_sweep

log = logging.getLogger(__name__)


def train(cfg: DictConfig) -> float | None:
    """Train as `cfg` says — or continue the run cfg.resume names, in its folder; return the best
    val/loss (what sweepers minimise), or None for a failed job of a sweep."""
    started = time.perf_counter()
    if not cfg.get("resume"):
        run = RunFolder(cfg.paths.output_dir)
        run.refuse_if_it_holds_a_run()
        with hold_run_folder(run):
            return train_in(run, cfg, command_line_overrides(), started)
    if in_sweep():
        raise ConfigError("resume= continues one run; it cannot be part of a sweep (-m).")
    resume = open_resume(cfg, command_line_overrides())
    # What runs: the run's own config with this command's overrides on top.
    check_settings(resume.config, TrainSettings)
    finished = resume.nothing_to_do()
    if finished:
        # Not logged: the log file is the run's, and a finished run's folder stays as it was.
        print(finished, file=sys.stderr)
        return (resume.run.read_result() or {}).get("best_val_loss")
    with hold_run_folder(resume.run):
        cfg = resume.record()
        earlier_seconds = (resume.run.read_result() or {}).get("seconds", 0.0)
        return train_in(resume.run, cfg, run_overrides(resume.run), started, earlier_seconds)


def train_in(
    run: RunFolder,
    cfg: DictConfig,
    overrides: list[str],
    started: float,
    earlier_seconds: float = 0.0,  # spent by a resumed run's earlier segments
) -> float | None:
    """Train in `run` (locked by this process) and record how it went in its result.json."""
    record: dict[str, Any] = job_record(run, overrides)
    try:
        result = training.fit(cfg)  # Lightning is imported here (tinylm.training)
    except (Exception, Interrupted) as error:
        user_error = find_user_error(error)
        status = DIVERGED if isinstance(user_error, DivergenceError) else FAILED
        if isinstance(error, Interrupted):
            status, user_error = INTERRUPTED, error
        record.update(status=status, error=str(user_error or f"{type(error).__name__}: {error}"))
        record["seconds"] = round(earlier_seconds + time.perf_counter() - started, 1)
        try:
            write_result(run, record)
        except WriteError as not_written:  # the full disk that failed the run, most likely:
            log.error(not_written)  # the run's own error is the one to report
        if isinstance(error, Interrupted):
            log.warning(f"Stopped by {error.signal.name}{how_to_continue(run)}")
            raise SystemExit(error.exit_status) from None
        if not in_sweep():
            raise
        log.exception(f"This job failed ({record['error']}); the sweep goes on.")
        return None

    record.update(
        status=INTERRUPTED if result.stopped_by else COMPLETED,
        best_val_loss=finite_or_none(result.best_val_loss),
        final_val_loss=finite_or_none(result.final_val_loss),
        steps=result.steps,
        best_checkpoint=result.best_checkpoint,
        seconds=round(earlier_seconds + time.perf_counter() - started, 1),
    )
    if record["best_val_loss"] is None:
        record.update(
            status=FAILED,
            error=f"no finite val/loss (final: {result.final_val_loss}): the training diverged "
            "or never validated",
        )
    write_result(run, record)
    if result.stopped_by:
        log.warning(
            f"Stopped by {result.stopped_by.name} at step {result.steps:,}{how_to_continue(run)}"
        )
        raise SystemExit(128 + result.stopped_by)  # the shell's convention for a signal
    if record["status"] == FAILED and in_sweep():
        log.error(f"This job failed ({record['error']}); the sweep goes on.")
        return None
    return result.best_val_loss


def how_to_continue(run: RunFolder) -> str:
    """The end of the line that says a signal stopped `run`: how to go on."""
    if run.last_checkpoint.is_file():
        return f"; continue with python scripts/train.py resume={run.path.resolve()}"
    return " before its first checkpoint: there is nothing to resume; start the run again."
