"""Callbacks that tests add through the config (`+callbacks.NAME._target_=...`)."""

import torch
from lightning.pytorch.callbacks import Callback


class StopAtStep(Callback):
    """Ends a run early, as if it were interrupted after `step` optimizer steps."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step >= self.step:
            trainer.should_stop = True


class SaveInitialWeights(Callback):
    def __init__(self, path: str) -> None:
        self.path = path

    def on_train_start(self, trainer, pl_module) -> None:
        torch.save(pl_module.model.state_dict(), self.path)
