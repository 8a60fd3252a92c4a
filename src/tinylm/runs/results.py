"""result.json: how a run ended, written into its folder by the train command and read by the
sweep summary (the file itself is RunFolder.result)."""

from __future__ import annotations

import math

from lightning.pytorch.utilities import rank_zero_only

from tinylm.runs.folder import RunFolder

COMPLETED, FAILED, INTERRUPTED = "completed", "failed", "interrupted"
DIVERGED = "diverged"  # a failure of its own kind: the loss stopped being a number


def finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None  # JSON has no NaN


@rank_zero_only
def write_result(run: RunFolder, record: dict) -> None:
    run.write_result(record)
