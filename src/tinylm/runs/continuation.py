"""A run resumed in its folder continues its files, and its numbering, from the checkpoint."""

from __future__ import annotations

from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_only

from tinylm.runs.folder import RunFolder


class ContinueFromCheckpoint(Callback):
    """When Lightning restores a checkpoint, cuts the run folder's appended files (metrics.csv,
    samples.jsonl) back to its step (RunFolder.cut_back_to), and numbers what the run logs next
    as an uninterrupted run would. Lightning restores after every check of the run's settings
    has passed, so a refused run leaves the files as they were.

    The numbering: loggers number rows by the epoch loop's count of optimizer steps, which
    Lightning restores one short from a checkpoint saved by the validation that ends a stopped
    run (Ctrl-C, SIGTERM), whose batch it counts as complete. Set from global_step — what it
    equals in an uninterrupted run — the rows after a resume continue the numbering of those
    before it. It is set at the first batch, after Lightning's own restart adjustments.
    """

    def __init__(self, run_folder: str) -> None:
        self.run = RunFolder(run_folder)
        self.restored = False

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        self.restored = True
        rank_zero_only(self.run.cut_back_to)(checkpoint["global_step"])

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if self.restored:
            # Lightning's private counter: there is no public way to set the logging step.
            trainer.fit_loop.epoch_loop._batches_that_stepped = trainer.global_step
            self.restored = False
