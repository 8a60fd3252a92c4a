"""One process at a time per run folder.

Two processes training into one folder — a `resume=` started twice, or while the run itself
still trains — would interleave their rows in metrics.csv, their lines in samples.jsonl and
their checkpoints. So the train command holds an exclusive lock on the folder's lock file for
as long as it trains. It is an flock(2) lock, which the kernel releases when the process ends,
however it ends: a killed process (SIGKILL, out of memory, a power cut for a local disk) leaves
no stale lock behind, only the file, which the next run locks again.

The file holds the id of the process that locked it, for the sentence that refuses a second.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager

from tinylm.errors import ConfigError
from tinylm.runs.folder import RunFolder


@contextmanager
def hold_run_folder(run: RunFolder) -> Iterator[None]:
    """Lock `run` for this process for the duration of the block, or refuse in one sentence
    when another process holds it. The processes of one distributed job train in one folder
    together: the first (global rank zero) holds the lock for them all."""
    # Lightning knows the rank (from the launcher's environment, or its Trainer's). Imported
    # here, when training starts, and not with the train command: importing Lightning takes
    # seconds, which a command refused by its settings check should not spend.
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    if rank_zero_only.rank != 0:
        yield
        return
    run.path.mkdir(parents=True, exist_ok=True)
    with open(run.lock, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            pid = handle.read().strip()
            holder = f"process {pid}" if pid else "another process"
            raise ConfigError(
                f"{run.path} is in use: {holder} is training in it; wait for it to "
                "end (or stop it) before training in this run folder again."
            ) from None
        handle.truncate(0)  # "a+": the id is written at the end, which is now the start
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
