"""result.json: how a run ended, written into its folder by the train command and read by the
sweep summary."""

from __future__ import annotations

import json
import math
from pathlib import Path

from lightning.pytorch.utilities import rank_zero_only

from tinylm.experiments.run_folders import RESULT_FILE
from tinylm.utils.files import write_atomically

COMPLETED, FAILED, INTERRUPTED = "completed", "failed", "interrupted"
DIVERGED = "diverged"  # a failure of its own kind: the loss stopped being a number


def finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None  # JSON has no NaN


@rank_zero_only
def write_result(folder: str | Path, record: dict) -> None:
    write_atomically(Path(folder) / RESULT_FILE, json.dumps(record, indent=2) + "\n")


def read_result(folder: str | Path) -> dict | None:
    """The record a run wrote, or None when it has not written one (yet)."""
    path = Path(folder) / RESULT_FILE
    return json.loads(path.read_text()) if path.is_file() else None
