"""Ctrl-C and SIGTERM (a scheduler's "time is up") stop a command cleanly, however many arrive.

While a run trains, a signal asks it to stop after the optimizer step in progress, never inside
one: Lightning then validates and saves its checkpoints as at the end of a run, so last.ckpt
holds a state that `resume=` continues exactly, and the train command records the run as
interrupted. Further signals change nothing: the run is stopping already (a scheduler may send
SIGTERM more than once, and a second Ctrl-C must not lose the checkpoint being written).

Anywhere else (tokenizing, loading, evaluating, exporting) a signal stops the command at once
(tinylm.runs.signals).
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from lightning.pytorch.callbacks import Callback

from tinylm.runs.logging_steps import at_logging_step
from tinylm.runs.signals import SIGNALS

log = logging.getLogger(__name__)


class StopOnSignal(Callback):
    def __init__(self) -> None:
        self.requested: signal.Signals | None = None  # the signal that asked to stop
        self.previous_handlers: dict[signal.Signals, object] = {}

    def on_fit_start(self, trainer, pl_module) -> None:
        # The handlers from before fit(), which Lightning's teardown puts back too.
        self.previous_handlers = {signum: signal.getsignal(signum) for signum in SIGNALS}

    def on_train_start(self, trainer, pl_module) -> None:
        # Installed after Lightning's own SIGTERM handler (which would end the run at the next
        # step without a checkpoint, with exit status 0), and kept until fit() ends: the last
        # validation and checkpoints after the final step are written under it too.
        if threading.current_thread() is threading.main_thread():
            for signum in SIGNALS:
                signal.signal(signum, self.request_stop)

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        if self.requested is not None:
            log.warning(f"{signal.Signals(signum).name}: already stopping after this step.")
            return
        self.requested = signal.Signals(signum)
        log.warning(
            f"{self.requested.name}: stopping after this optimizer step, with a checkpoint."
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

    def on_fit_end(self, trainer, pl_module) -> None:
        self.restore_handlers()

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        self.restore_handlers()

    def restore_handlers(self) -> None:
        if threading.current_thread() is threading.main_thread():
            for signum, handler in self.previous_handlers.items():
                if handler is not None:  # None: a handler set outside Python, left alone
                    signal.signal(signum, handler)
        self.previous_handlers = {}
