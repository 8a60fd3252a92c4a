"""The step clock of benchmarks/train_speed.py as a Lightning callback, for timing scripts/train.py
(added by the benchmark with `+callbacks.step_clock._target_=benchmarks.pipeline_clock...`)."""

from __future__ import annotations

import torch
from lightning.pytorch.callbacks import Callback

from benchmarks.train_speed import StepClock


class StepClockCallback(Callback):
    def __init__(self, path: str) -> None:
        cuda = torch.cuda.is_available()
        self.clock = StepClock(path, torch.cuda.synchronize if cuda else None)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if (batch_idx + 1) % trainer.accumulate_grad_batches == 0:
            self.clock.step_done()

    def on_fit_end(self, trainer, pl_module) -> None:
        cuda = pl_module.device.type == "cuda"
        self.clock.write(gpu_peak_bytes=torch.cuda.max_memory_allocated() if cuda else None)
