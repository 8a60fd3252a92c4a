"""Stop a run whose loss is no longer a number, before it saves or ranks anything from it."""

from __future__ import annotations

import torch
from lightning.pytorch.callbacks import Callback

from tinylm.errors import DivergenceError
from tinylm.runs.logging_steps import at_logging_step

NO_STEP = torch.iinfo(torch.int64).max  # "no non-finite loss yet"


class StopWhenDiverged(Callback):
    """Ends training with a DivergenceError, whose sentence names the step, at the first
    training loss or `monitor` (validation) value that is NaN or infinite.

    Looking at the loss on the host at every step would make the device wait for the host at
    every step. The step of the first non-finite training loss is therefore kept in a tensor on
    the device and read only where the host waits anyway: when Lightning logs (every
    trainer.log_every_n_steps), at each validation, before each checkpoint is written and when
    training ends. The run may go on a few steps past its first non-finite loss, but the step
    named is exactly the first one, and no checkpoint is saved from weights that are not finite
    (checked there too: a finite loss can still step the weights to infinity).

    Under several processes every decision is reduced across them, so that they all stop at the
    same point: each process sees only its own part of the batch.
    """

    def __init__(self, monitor: str = "val/loss") -> None:
        self.monitor = monitor
        self.first_nonfinite_step: torch.Tensor | None = None  # () int64, on the loss's device

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        loss = outputs["loss"]
        stepped = (batch_idx + 1) % trainer.accumulate_grad_batches == 0
        # Steps are counted from 1, as in checkpoint names: the optimizer step this batch is for.
        step = trainer.global_step if stepped else trainer.global_step + 1
        if self.first_nonfinite_step is None:
            self.first_nonfinite_step = torch.full((), NO_STEP, device=loss.device)
        this_step = torch.where(torch.isfinite(loss), NO_STEP, step)
        self.first_nonfinite_step = torch.minimum(self.first_nonfinite_step, this_step)
        if at_logging_step(trainer, batch_idx) or (stepped and trainer.should_stop):
            self.check_training_loss(trainer, pl_module)

    def on_validation_end(self, trainer, pl_module) -> None:
        # Runs before any ModelCheckpoint's on_validation_end (Lightning calls those last), so a
        # non-finite validation loss is never saved, nor named as best.
        if trainer.sanity_checking:
            return
        self.check_training_loss(trainer, pl_module)
        value = trainer.callback_metrics.get(self.monitor)  # the same on every process
        if value is not None and not torch.isfinite(value):
            raise DivergenceError(
                divergence_message(f"the validation loss ({self.monitor})", trainer, pl_module)
            )

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        self.check_training_loss(trainer, pl_module)
        finite = torch.stack([torch.isfinite(p).all() for p in pl_module.parameters()]).all()
        if not trainer.strategy.reduce_boolean_decision(bool(finite), all=True):
            raise DivergenceError(divergence_message("the weights", trainer, pl_module))

    def on_train_end(self, trainer, pl_module) -> None:
        self.check_training_loss(trainer, pl_module)

    def check_training_loss(self, trainer, pl_module) -> None:
        if self.first_nonfinite_step is None:
            return  # no training step yet
        # In place: afterwards every process holds the earliest step of them all.
        step = int(trainer.strategy.reduce(self.first_nonfinite_step, reduce_op="min"))
        if step != NO_STEP:
            raise DivergenceError(
                divergence_message("the training loss", trainer, pl_module, step=step)
            )


def divergence_message(what: str, trainer, pl_module, step: int | None = None) -> str:
    step = trainer.global_step if step is None else step
    lr = pl_module.hparams.get("optimizer", {}).get("lr")
    now = f" (now {lr:g})" if isinstance(lr, int | float) else ""
    return (
        f"Training diverged: {what} became NaN or infinite at step {step:,}; lower "
        f"optimizer.lr{now} or raise optimizer.warmup_steps, and train again."
    )
