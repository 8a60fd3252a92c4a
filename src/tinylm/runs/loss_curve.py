"""The run folder's loss_curve.png: the training loss at every step and each validation's,
drawn when training ends, from a history that the checkpoint carries across resumes."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_only
from matplotlib.figure import Figure

from tinylm.runs.logging_steps import at_logging_step
from tinylm.utils.files import atomic_write


class LossCurve(Callback):
    """Records the training loss at every optimizer step (GPTLightningModule.train_loss) and
    val/loss at every validation, and draws both against the step into `path` when training
    ends.

    Each step's loss is kept as the tensor it is, on its device, and the losses are read
    together at logging steps and validations (see at_logging_step), so the curve holds every
    step without reading one at every step.
    The history is part of the checkpoint, so a resumed run draws its whole curve.
    """

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.train: list[tuple[int, float]] = []
        self.val: list[tuple[int, float]] = []
        self.unread: list[tuple[int, torch.Tensor]] = []  # (step, loss) not in self.train yet

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        loss = getattr(pl_module, "train_loss", None)  # GPTLightningModule's, every step
        step = trainer.global_step
        recorded = self.unread or self.train
        if loss is not None and (not recorded or recorded[-1][0] != step):
            self.unread.append((step, loss))  # a new tensor every step: later steps leave it be
        if at_logging_step(trainer, batch_idx):
            self.read_train_losses()

    def read_train_losses(self) -> None:
        """Move the unread losses into self.train, with a single wait for the device."""
        if self.unread:
            steps, losses = zip(*self.unread, strict=True)
            self.train.extend(zip(steps, torch.stack(losses).tolist(), strict=True))
            self.unread = []

    def on_validation_end(self, trainer, pl_module) -> None:
        self.read_train_losses()
        loss = trainer.callback_metrics.get("val/loss")
        if loss is not None and not trainer.sanity_checking:
            self.val.append((trainer.global_step, float(loss)))

    @rank_zero_only
    def on_fit_end(self, trainer, pl_module) -> None:
        self.read_train_losses()
        if self.train or self.val:
            draw_loss_curve(
                self.train, self.val, self.path, getattr(pl_module, "chance_loss", None)
            )

    def state_dict(self) -> dict:
        self.read_train_losses()
        return {"train": self.train, "val": self.val}

    def load_state_dict(self, state_dict: dict) -> None:
        self.train = [tuple(point) for point in state_dict["train"]]
        self.val = [tuple(point) for point in state_dict["val"]]


def draw_loss_curve(
    train: list[tuple[int, float]],
    val: list[tuple[int, float]],
    path: Path,
    chance_loss: float | None = None,
) -> None:
    # A Figure of its own, not pyplot: no global state, no display backend to choose.
    figure = Figure(figsize=(8, 5))
    axes = figure.subplots()
    if train:
        axes.plot(*zip(*train, strict=True), label="train", linewidth=1, alpha=0.8)
    if val:
        axes.plot(*zip(*val, strict=True), "o-", label="validation", markersize=4)
    if chance_loss is not None and math.isfinite(chance_loss):
        axes.axhline(chance_loss, color="grey", linestyle=":", label="ln(vocab): chance")
    axes.set_xlabel("optimizer step")
    axes.set_ylabel("cross-entropy loss (nats/token)")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    with atomic_write(path, "wb") as handle:
        figure.savefig(handle, dpi=120, format=path.suffix.removeprefix(".") or "png")
