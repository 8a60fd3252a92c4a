"""Checkpoints that are either whole or not there: Lightning's checkpoint I/O, saving atomically.

Lightning's TorchCheckpointIO saves through an fsspec transaction, whose temporary file lives in
the system's temporary folder and is then moved to the checkpoint's name: across file systems
a move is a copy, and a copy cut short by a full disk leaves a partial file under the real name.
AtomicCheckpointIO writes beside the checkpoint and renames (tinylm.utils.files.atomic_write),
so a save that fails — a full disk, a kill — leaves the previous files as they were and no
partial file.

A failed save must stop every process of the run with one sentence. Lightning writes on global
rank zero only, while the other processes wait for it at a barrier: had rank zero raised there,
it would have left them waiting (NCCL) or failing with a traceback of their own (gloo). So the
I/O records the failure, leaves the folder alone from then on (no more saves, no removals: the
previous best stays), and StopWhenSaveFailed, in the next hook that all processes reach, hands
rank zero's sentence to all of them and raises it everywhere at once.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch
from fsspec.utils import get_protocol
from lightning.fabric.utilities.types import _PATH
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.plugins.io import TorchCheckpointIO

from tinylm.errors import WriteError
from tinylm.utils.files import atomic_write


class AtomicCheckpointIO(TorchCheckpointIO):
    """Saves each checkpoint to a temporary file in its folder, fsyncs it and renames it over
    its name. After a save has failed, it saves and removes nothing more; `failure` says why."""

    def __init__(self) -> None:
        super().__init__()
        self.last_saved: tuple[Path, int | None] | None = None  # path, global step
        self.failure: WriteError | None = None

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None
    ) -> None:
        if self.failure is not None:
            return  # the run stops at the next hook; the folder stays as the failure left it
        if storage_options is not None or get_protocol(str(path)) not in ("file", "local"):
            # Object stores (s3://…) write an object whole or not at all; Lightning's way is right.
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        # Serialised first, as Lightning does: torch.save reports a failed write to a file as
        # a RuntimeError that hides the OSError (a full disk), and a checkpoint that cannot be
        # serialised should fail before any file exists.
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        try:
            with atomic_write(path, "wb") as handle:
                handle.write(buffer.getbuffer())
        except WriteError as error:
            self.failure = WriteError(f"{str(error).removesuffix('.')}; {self.last_good()}.")
            return
        self.last_saved = Path(path), checkpoint.get("global_step")

    def remove_checkpoint(self, path: _PATH) -> None:
        if self.failure is None:  # else a checkpoint that the failed one was to replace
            super().remove_checkpoint(path)

    def last_good(self) -> str:
        if self.last_saved is None:
            return "no checkpoint of this run had been saved yet"
        path, step = self.last_saved
        at_step = f" (step {step:,})" if step is not None else ""
        return f"the last good checkpoint is {path}{at_step}"


class StopWhenSaveFailed(Callback):
    """Raises the AtomicCheckpointIO's failure on every process, in the first hook after a save
    that they all reach: the next training batch, validation, or the end of fitting."""

    def __init__(self) -> None:
        self.saved_since_check = False

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        self.saved_since_check = True  # every process builds the checkpoint, rank zero writes it

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        self.raise_failure(trainer)

    def on_validation_start(self, trainer, pl_module) -> None:
        self.raise_failure(trainer)

    def on_fit_end(self, trainer, pl_module) -> None:
        self.raise_failure(trainer)

    def raise_failure(self, trainer) -> None:
        if not self.saved_since_check:
            return
        self.saved_since_check = False
        checkpoint_io = trainer.strategy.checkpoint_io
        failure = checkpoint_io.failure if isinstance(checkpoint_io, AtomicCheckpointIO) else None
        message = trainer.strategy.broadcast(None if failure is None else str(failure))
        if message is not None:
            raise WriteError(message)
