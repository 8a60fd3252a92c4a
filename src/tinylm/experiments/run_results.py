"""result.json: how a run ended, written into its folder by the train command and read by the
sweep summary."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.utilities import rank_zero_only

from tinylm.errors import WriteError
from tinylm.experiments.run_folders import RESULT_FILE
from tinylm.utils.files import write_atomically
from tinylm.utils.hydra import command_line_overrides, in_sweep

log = logging.getLogger(__name__)

COMPLETED, FAILED, INTERRUPTED = "completed", "failed", "interrupted"
DIVERGED = "diverged"  # a failure of its own kind: the loss stopped being a number


def finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None  # JSON has no NaN


def job_record(folder: str | Path, overrides: list[str]) -> dict:
    """What every result.json starts with: the job's number in a sweep (None outside one), the
    overrides it ran with, and its folder."""
    return {
        "job": HydraConfig.get().job.num if in_sweep() else None,
        "overrides": overrides,
        "folder": str(Path(folder).resolve()),
    }


def record_failed_job(folder: str | Path, error: str) -> None:
    """Log a sweep job's failure and record it in its result.json; the sweep goes on."""
    log.error(f"This job failed ({error}); the sweep goes on.")
    record = job_record(folder, command_line_overrides()) | {"status": FAILED, "error": error}
    try:
        write_result(folder, record)
    except WriteError as not_written:  # a full disk, most likely: the summary says "no result"
        log.error(not_written)


@rank_zero_only
def write_result(folder: str | Path, record: dict) -> None:
    write_atomically(Path(folder) / RESULT_FILE, json.dumps(record, indent=2) + "\n")


def read_result(folder: str | Path) -> dict | None:
    """The record a run wrote, or None when it has not written one (yet)."""
    path = Path(folder) / RESULT_FILE
    return json.loads(path.read_text()) if path.is_file() else None
