"""The log file of every command (conf/hydra/default.yaml: <run folder>/<command>.log).

logging's own FileHandler, on a disk that is full or read-only, prints a "--- Logging error ---"
block with a traceback for every line logged after that; this one says so once, in one line on
stderr, and logs to the terminal only from then on. What the command writes itself (checkpoints,
result.json) reports its own failure.
"""

from __future__ import annotations

import logging
import sys


class LogFile(logging.FileHandler):
    def __init__(self, filename: str, mode: str = "a", encoding: str | None = "utf-8") -> None:
        self.failed = False
        # Opened at the first record, in emit(), where a failure to open it is handled too.
        super().__init__(filename, mode, encoding, delay=True)

    def emit(self, record: logging.LogRecord) -> None:
        if self.failed:
            return
        try:
            super().emit(record)
        except OSError as error:  # opening the file (a write error goes to handleError)
            self.give_up(error)

    def close(self) -> None:
        try:
            super().close()
        except OSError as error:  # the last records, flushed now
            if not self.failed:
                self.give_up(error)

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 (logging's name)
        error = sys.exc_info()[1]
        if isinstance(error, OSError) and not self.failed:
            self.give_up(error)
        elif not isinstance(error, OSError):
            super().handleError(record)  # a bug in a log call: logging's report is the one

    def give_up(self, error: OSError) -> None:
        self.failed = True
        reason = error.strerror or str(error)
        print(
            f"warning: {reason} while writing {self.baseFilename}; the log goes on in the "
            "terminal only.",
            file=sys.stderr,
        )
