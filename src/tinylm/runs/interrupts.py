"""Ctrl-C and SIGTERM (a scheduler's "time is up") stop a run cleanly.

The first signal asks the run to stop after the optimizer step in progress, never inside one:
Lightning then validates and saves its checkpoints as at the end of a run, so last.ckpt holds a
state that `resume=` continues exactly, and the train command records the run as interrupted.
A second signal stops at once, the way it would without this callback.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from lightning.pytorch.callbacks import Callback

from tinylm.runs.logging_steps import at_logging_step

log = logging.getLogger(__name__)
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopOnSignal(Callback):
    def __init__(self) -> None:
        self.requested: signal.Signals | None = None  # the signal that asked to stop
        self.previous_handlers: dict[signal.Signals, object] = {}

    def on_train_start(self, trainer, pl_module) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # Python delivers signals to the main thread only
        for signum in SIGNALS:
            self.previous_handlers[signum] = signal.signal(signum, self.request_stop)

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        self.requested = signal.Signals(signum)
        self.restore_handlers()
        log.warning(
            f"{self.requested.name}: stopping after this optimizer step, with a checkpoint "
            "(send it again to stop at once, without one)."
        )

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        requested = self.requested is not None
        if trainer.world_size > 1:
            # Every process must stop after the same step. Asking the others costs a collective,
            # so it is done at the logging steps only.
            if not at_logging_step(trainer, batch_idx):
                return
            requested = trainer.strategy.reduce_boolean_decision(requested, all=False)
        elif (batch_idx + 1) % trainer.accumulate_grad_batches:
            return  # within an accumulated step: stop after the optimizer step
        if requested:
            trainer.should_stop = True

    def on_train_end(self, trainer, pl_module) -> None:
        self.restore_handlers()

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        self.restore_handlers()

    def restore_handlers(self) -> None:
        for signum, handler in self.previous_handlers.items():
            signal.signal(signum, handler)
        self.previous_handlers = {}
