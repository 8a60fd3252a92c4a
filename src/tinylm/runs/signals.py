"""Ctrl-C and SIGTERM outside training stop a command at once (training stops after its step:
tinylm.runs.interrupts).

Inside `signals_stop_at_once()` (every command, through tinylm.commands.run) a signal raises
`Interrupted`, which the `except BaseException` clauses around every partial write clean up
after, and which the entry point turns into one line and the shell's exit status. No Lightning
here: every command imports this.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """A signal that stops a command at once. A BaseException, as KeyboardInterrupt is, so that
    no `except Exception` mistakes it for an error of the command's."""

    def __init__(self, signum: int) -> None:
        self.signal = signal.Signals(signum)
        super().__init__(f"stopped by {self.signal.name}")

    @property
    def exit_status(self) -> int:
        return 128 + self.signal  # the shell's convention: 130 for SIGINT, 143 for SIGTERM


def stop_at_once(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signum)


@contextmanager
def signals_stop_at_once() -> Iterator[None]:
    """SIGINT and SIGTERM raise Interrupted inside the block (the main thread's handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # Python delivers signals to the main thread only
        return
    previous = {signum: signal.signal(signum, stop_at_once) for signum in SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
