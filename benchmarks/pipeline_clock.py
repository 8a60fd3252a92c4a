"""The step clock of benchmarks/train_speed.py as a Lightning callback, for timing scripts/train.py
(added by the benchmark with `+callbacks.step_clock._target_=benchmarks.pipeline_clock...`).
benchmarks/time_to_loss.py also has it save the weights every `snapshot_every` optimizer steps and
at the last, to be evaluated on the whole validation split after the run, outside its clock."""

from __future__ import annotations

import time
from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback

from benchmarks.train_speed import StepClock


class StepClockCallback(Callback):
    def __init__(self, path: str, snapshot_every: int = 0, snapshot_dir: str | None = None) -> None:
        cuda = torch.cuda.is_available()
        self.clock = StepClock(path, torch.cuda.synchronize if cuda else None)
        self.snapshot_every = snapshot_every
        self.snapshot_dir = Path(snapshot_dir) if snapshot_dir else None
        # Per snapshot: step, time.time() and the process's CPU time when the step ended, and
        # the seconds of each spent saving snapshots until then (which the benchmark subtracts).
        self.snapshots: list[dict] = []
        self.saving_s = self.saving_cpu_s = 0.0
        # perf_counter() when each optimizer step began (after forward and backward): with the
        # step ends, the share of a step that clipping and the optimizer take.
        self.optimizer_starts: list[float] = []

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        self.optimizer_starts.append(time.perf_counter())

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if (batch_idx + 1) % trainer.accumulate_grad_batches != 0:
            return
        self.clock.step_done()
        step = trainer.global_step
        if self.snapshot_every and (step % self.snapshot_every == 0 or step >= trainer.max_steps):
            ended, cpu = time.time(), time.process_time()
            self.snapshot_dir.mkdir(parents=True, exist_ok=True)
            torch.save(pl_module.model.state_dict(), self.snapshot_dir / f"step{step:07d}.pt")
            self.saving_s += time.time() - ended
            self.saving_cpu_s += time.process_time() - cpu
            self.snapshots.append({"step": step, "time": ended, "saving_s": self.saving_s,
                                   "cpu": cpu, "saving_cpu_s": self.saving_cpu_s})  # fmt: skip

    def on_fit_end(self, trainer, pl_module) -> None:
        cuda = pl_module.device.type == "cuda"
        self.clock.write(
            gpu_peak_bytes=torch.cuda.max_memory_allocated() if cuda else None,
            optimizer_starts=self.optimizer_starts,
            snapshots=self.snapshots,
        )
