"""result.json: how a run ended, written into its folder by the train command and read by the
sweep summary (the file itself is RunFolder.result)."""

from __future__ import annotations

import logging
import math

from hydra.core.hydra_config import HydraConfig

from tinylm.errors import WriteError
from tinylm.runs.folder import RunFolder
from tinylm.utils.hydra import command_line_overrides, in_sweep

log = logging.getLogger(__name__)

COMPLETED, FAILED, INTERRUPTED = "completed", "failed", "interrupted"
DIVERGED = "diverged"  # a failure of its own kind: the loss stopped being a number


def finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None  # JSON has no NaN


def job_record(run: RunFolder, overrides: list[str]) -> dict:
    """What every result.json starts with: the job's number in a sweep (None outside one), the
    overrides it ran with, and its folder."""
    return {
        "job": HydraConfig.get().job.num if in_sweep() else None,
        "overrides": overrides,
        "folder": str(run.path.resolve()),
    }


def record_failed_job(run: RunFolder, error: str) -> None:
    """Log a sweep job's failure and record it in its result.json; the sweep goes on."""
    log.error(f"This job failed ({error}); the sweep goes on.")
    record = job_record(run, command_line_overrides()) | {"status": FAILED, "error": error}
    try:
        write_result(run, record)
    except WriteError as not_written:  # a full disk, most likely: the summary says "no result"
        log.error(not_written)


def write_result(run: RunFolder, record: dict) -> None:
    """Write result.json from global rank zero only: a distributed job's processes share the
    run folder."""
    # Imported here, as in tinylm.runs.lock: not with the train command and the sweep summary.
    from lightning.pytorch.utilities import rank_zero_only

    rank_zero_only(run.write_result)(record)
