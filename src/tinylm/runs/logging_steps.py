"""When training's metrics are written: the one moment to read values off the device."""

from __future__ import annotations

import lightning as L


def at_logging_step(trainer: L.Trainer, batch_idx: int) -> bool:
    """Whether the batch that just ended completed an optimizer step whose metrics the loggers
    write (every trainer.log_every_n_steps steps).

    Values kept on the device are read then, when the loggers read theirs: a read makes the
    host wait until the GPU has caught up, and one at every step would leave the GPU idle
    while the host prepares the next step.
    """
    optimizer_stepped = (batch_idx + 1) % trainer.accumulate_grad_batches == 0
    every = trainer.log_every_n_steps
    return optimizer_stepped and every > 0 and trainer.global_step % every == 0
