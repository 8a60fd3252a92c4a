"""Callbacks that tests add through the config (`+callbacks.NAME._target_=...`)."""

import json
import os
import signal

import torch
from hydra.core.hydra_config import HydraConfig
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


class RecordBatches(Callback):
    """Saves the inputs of every training micro-batch this rank trained on to
    `<folder>/rank<global rank>.pt`, a tensor (micro-batches, batch, block)."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.inputs: list[torch.Tensor] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.inputs.append(batch[0].cpu())

    def on_train_end(self, trainer, pl_module) -> None:
        os.makedirs(self.folder, exist_ok=True)
        torch.save(torch.stack(self.inputs), f"{self.folder}/rank{trainer.global_rank}.pt")


class DivergeInSweepJob(Callback):
    """Makes the weights NaN before training in the sweep job numbered `job`: a diverged run."""

    def __init__(self, job: int) -> None:
        self.job = job

    def on_train_start(self, trainer, pl_module) -> None:
        if HydraConfig.get().job.num == self.job:
            with torch.no_grad():
                pl_module.model.ln_f.weight.fill_(float("nan"))


class KillAtStep(Callback):
    """Kills its own process with SIGKILL after `step` optimizer steps: no clean-up runs, as when
    a machine fails or a scheduler kills a job (`kill -9`)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step >= self.step:
            os.kill(os.getpid(), signal.SIGKILL)


class SignalAtStep(Callback):
    """Sends its own process `signum` `times` times (as Ctrl-C or a scheduler would) during the
    optimizer step that follows `step` steps."""

    def __init__(self, step: int, signum: int, times: int = 1) -> None:
        self.step = step
        self.signum = signum
        self.times = times

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            for _ in range(self.times):
                os.kill(os.getpid(), self.signum)


class ScrambleWeightsAtStep(Callback):
    """Replaces the weights with noise after optimizer step `step`: the validations after it are
    worse than the one before, so the best checkpoint stays at an earlier step."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            generator = torch.Generator().manual_seed(0)
            with torch.no_grad():
                for parameter in pl_module.model.parameters():
                    noise = torch.randn(parameter.shape, generator=generator)
                    parameter.copy_(noise.to(parameter.device))


class SaveFinalWeights(Callback):
    """Saves the model's state_dict, as training leaves it, to `path`."""

    def __init__(self, path: str) -> None:
        self.path = path

    def on_fit_end(self, trainer, pl_module) -> None:
        torch.save(pl_module.model.state_dict(), self.path)


class RecordTrainingLosses(Callback):
    """Appends "<optimizer step> <loss>" to `path` after every training batch (a host sync per
    step, which tinylm's own callbacks avoid; fine for a test)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        with open(self.path, "a") as handle:
            handle.write(f"{trainer.global_step} {float(outputs['loss'])}\n")


class NaNWeightsBeforeValidationAtStep(Callback):
    """Makes the weights NaN just before the validation at optimizer step `step`: a validation
    loss that is NaN after finite training losses."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_validation_start(self, trainer, pl_module) -> None:
        if trainer.global_step == self.step and not trainer.sanity_checking:
            with torch.no_grad():
                pl_module.model.ln_f.weight.fill_(float("nan"))


class InfiniteWeightsAtStep(Callback):
    """Makes a weight infinite after optimizer step `step`, the loss of that step being finite."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            with torch.no_grad():
                pl_module.model.ln_f.weight[0] = float("inf")


class ReadLossEveryStep(Callback):
    """The training loss read as a float after every optimizer step, as LossCurve used to: the
    reference its on-device record must equal. Written to `path` as JSON [[step, loss], ...]."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.losses: list[tuple[int, float]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = pl_module.train_loss
        step = trainer.global_step
        if loss is not None and (not self.losses or self.losses[-1][0] != step):
            self.losses.append((step, float(loss)))

    def on_fit_end(self, trainer, pl_module) -> None:
        with open(self.path, "w") as handle:
            json.dump(self.losses, handle)


class CountHostReads(Callback):
    """Counts reads of tensor values by the host (.item(), float(), int(), bool(), .tolist())
    during training, and writes to `path`, as JSON, the running count at the end of each
    optimizer step: {step: reads so far}."""

    READS = ("item", "tolist", "__float__", "__int__", "__bool__", "__index__")

    def __init__(self, path: str) -> None:
        self.path = path
        self.reads = 0
        self.reads_by_step: dict[int, int] = {}
        self.originals = {name: getattr(torch.Tensor, name) for name in self.READS}

    def on_train_start(self, trainer, pl_module) -> None:
        for name, original in self.originals.items():
            setattr(torch.Tensor, name, self.counting(original))

    def counting(self, original):
        def read(tensor, *args, **kwargs):
            self.reads += 1
            return original(tensor, *args, **kwargs)

        return read

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.reads_by_step[trainer.global_step] = self.reads

    def on_train_end(self, trainer, pl_module) -> None:
        for name, original in self.originals.items():
            setattr(torch.Tensor, name, original)
        with open(self.path, "w") as handle:
            json.dump(self.reads_by_step, handle)


class RecordTrainingSetup(Callback):
    """Writes to `path`, as JSON, how the run trains: its precision, whether its optimizer is
    fused, whether its model is compiled, and the device."""

    def __init__(self, path: str) -> None:
        self.path = path

    def on_train_start(self, trainer, pl_module) -> None:
        setup = {
            "precision": str(trainer.precision),
            "fused": bool(trainer.optimizers[0].defaults.get("fused")),
            "compiled": pl_module.step_model is not pl_module.model,
            "device": pl_module.device.type,
        }
        with open(self.path, "w") as handle:
            json.dump(setup, handle)


class RecordGradientNorms(Callback):
    """Writes to `path`, as JSON, the total norm of the gradients each optimizer step applied
    (read after the step, which leaves them as clipping made them) and whether AdamW was fused."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.norms: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        grads = [p.grad for p in pl_module.model.parameters() if p.grad is not None]
        self.norms.append(float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))))

    def on_train_end(self, trainer, pl_module) -> None:
        fused = trainer.optimizers[0].defaults["fused"]
        with open(self.path, "w") as handle:
            json.dump({"norms": self.norms, "fused": bool(fused)}, handle)
