"""last.ckpt: the newest state of a run, where `ckpt_path=` resumes from."""

from __future__ import annotations

from lightning.pytorch.callbacks import Checkpoint

from tinylm.runs.folder import RunFolder


class LastCheckpoint(Checkpoint):
    """Saves the run folder's last.ckpt after every validation and when training ends.

    ModelCheckpoint(save_last=True) writes last.ckpt only when it saves another checkpoint at
    the same step, so after a validation that is not the best, last.ckpt would keep an older
    state (and the newest weights of a run past its best would be saved nowhere). A second
    ModelCheckpoint would do, but loggers take each ModelCheckpoint's newest file for the best
    model (wandb's `best` alias).

    Being a Checkpoint, Lightning calls it after the other callbacks and in the order of the
    other checkpoint callbacks: listed after the best one, last.ckpt holds the best one's
    newest state (which file is best), as a run resumed from it needs.
    """

    def __init__(self, run_folder: str) -> None:
        self.path = RunFolder(run_folder).last_checkpoint
        self.saved_at_step: int | None = None

    def on_validation_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self.save(trainer)

    def on_train_end(self, trainer, pl_module) -> None:
        self.save(trainer)  # for a run that never validates (trainer.limit_val_batches=0)

    def save(self, trainer) -> None:
        if trainer.fast_dev_run or self.saved_at_step == trainer.global_step:
            return
        # The whole state (optimizer, loops, callbacks): resume= continues from it. Said, not
        # left to Lightning's default, which it announces at every save.
        trainer.save_checkpoint(self.path, weights_only=False)
        self.saved_at_step = trainer.global_step
