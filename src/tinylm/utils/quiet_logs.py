"""What Lightning, torch and tqdm print that a learner's terminal (or notebook) does not need:
an advertisement, a deprecation inside Lightning, a warning that a resumed run's checkpoint
folder holds its own checkpoints, and tqdm's complaint in a notebook without ipywidgets. Each
is dropped by its text, so every other warning still shows. `import tinylm` drops them, before
any of those libraries is imported."""

from __future__ import annotations

import logging
import warnings

UNNEEDED_WARNINGS = [
    # torch 2.13 deprecates a check that Lightning 2.6 makes at every validation; not ours to fix.
    (FutureWarning, r"`isinstance\(treespec, LeafSpec\)` is deprecated"),
    # resume= continues in the run's own folder, so its checkpoints are there by design; a new
    # run is never given a folder that holds one (tinylm.runs.claim).
    (UserWarning, r"Checkpoint directory .* exists and is not empty"),
    # transformers (imported by torchmetrics, so by Lightning) imports tqdm.auto, which warns in
    # a notebook without ipywidgets; tinylm's own progress bars are plain tqdm.
    (Warning, r"IProgress not found"),
]
ADVERTISEMENTS = ("💡 Tip:",)  # Lightning's suggestion to install litlogger, at every start


class DropAdvertisements(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(ADVERTISEMENTS)


def quiet_library_noise() -> None:
    """Drop the messages above, for this process (idempotent)."""
    for category, message in UNNEEDED_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)
    rank_zero = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if not any(isinstance(f, DropAdvertisements) for f in rank_zero.filters):
        rank_zero.addFilter(DropAdvertisements())
