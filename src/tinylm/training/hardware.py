"""The hardware a run trains on: the Trainer's device arguments, the global batch over several
devices, Lightning's FSDP for a GPT, and DDP inside Hydra sweeps."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.plugins.environments import LightningEnvironment
from lightning.pytorch.strategies import FSDPStrategy
from omegaconf import DictConfig, OmegaConf

from tinylm.errors import ConfigError
from tinylm.model.block import Block
from tinylm.utils.hydra import in_sweep


def check_accelerator_is_here(accelerator: str) -> None:
    """hardware=gpu on a machine without a CUDA GPU (or mps without Apple's) is one sentence."""
    missing = (accelerator in ("gpu", "cuda") and not torch.cuda.is_available()) or (
        accelerator == "mps" and not torch.backends.mps.is_available()
    )
    if missing:
        raise ConfigError(
            f"hardware.accelerator={accelerator}, but this machine has no such device; use "
            "hardware=auto (a GPU when there is one, else the CPU) or hardware=cpu."
        )


def process_count(trainer: L.Trainer) -> int:
    """Training processes over all machines. Known as soon as the Trainer exists, unlike
    trainer.world_size, which stays 1 until Lightning has started the processes."""
    return trainer.num_devices * trainer.num_nodes


def accumulation_for_global_batch(
    global_batch_size: int, micro_batch_size: int, processes: int, accumulate_grad_batches: int
) -> int:
    """Micro-batches each process accumulates so that an optimizer step sees exactly
    `global_batch_size` sequences: global = micro batch × processes × accumulation."""
    if accumulate_grad_batches != 1:
        raise ConfigError(
            "Set data.global_batch_size or trainer.accumulate_grad_batches, not both: the "
            "accumulation is derived from the global batch."
        )
    per_pass = micro_batch_size * processes
    if global_batch_size <= 0 or global_batch_size % per_pass:
        raise ConfigError(
            f"data.global_batch_size={global_batch_size} must be a positive multiple of "
            f"data.batch_size × processes = {micro_batch_size} × {processes} = {per_pass}; "
            "change one of them."
        )
    return global_batch_size // per_pass


def apply_global_batch(trainer: L.Trainer, global_batch_size: int, micro_batch_size: int) -> None:
    """Make every optimizer step see `global_batch_size` sequences on this trainer's hardware.

    Done on the Trainer once it exists, because only then is the number of processes known
    (hardware.devices may be "auto", -1 or a list). Lightning counts val_check_interval in
    micro-batches; it is scaled by the accumulation so that runs of one global batch on
    different hardware validate after the same optimizer steps.
    """
    accumulation = accumulation_for_global_batch(
        global_batch_size, micro_batch_size, process_count(trainer), trainer.accumulate_grad_batches
    )
    trainer.accumulate_grad_batches = accumulation
    if isinstance(trainer.val_check_interval, int):
        trainer.val_check_interval *= accumulation


def refuse_relaunch_inside_sweep(trainer: L.Trainer) -> None:
    """Lightning starts the other processes of hardware=ddp on one machine by running the
    command line again (sys.argv) with the run folder added. Inside a Hydra multirun that
    command line is the whole sweep, so every child would start sweeps of its own."""
    if not in_sweep() or trainer.num_devices == 1:
        return
    # LightningEnvironment is the one where Lightning starts the processes; under torchrun or
    # SLURM (their own environments) every process was started already. Its own test for that,
    # LOCAL_RANK in os.environ, cannot be trusted here: an earlier DDP job of the sweep left it.
    if not isinstance(trainer.strategy.cluster_environment, LightningEnvironment):
        return
    raise ConfigError(
        f"A sweep job cannot start {trainer.num_devices} processes on this machine: Lightning "
        "would start them by re-running the command line, that is the whole sweep. Run each "
        "setting as a single run (without -m), or sweep with hydra/launcher=slurm, where SLURM "
        "starts one process per device."
    )


def fsdp_strategy(**kwargs) -> FSDPStrategy:
    """Lightning's FSDPStrategy with each transformer block as its own shard unit: a block's
    weights are gathered for its forward and backward, then freed again."""
    return FSDPStrategy(auto_wrap_policy={Block}, **kwargs)


def trainer_kwargs(cfg: DictConfig) -> dict[str, Any]:
    """`trainer.*` and `hardware.*` merged: Lightning's Trainer takes both. The strategy is a
    name (`ddp`) or, for one with settings (`hardware=fsdp`), a `_target_` to instantiate."""
    kwargs = OmegaConf.to_container(cfg.trainer, resolve=True)
    hardware = OmegaConf.to_container(cfg.hardware, resolve=True)
    if hardware.get("precision") is None:
        hardware["precision"] = default_precision(hardware.get("accelerator", "auto"))
    if isinstance(hardware.get("strategy"), dict):
        hardware["strategy"] = instantiate(hardware["strategy"])
    return {**kwargs, **hardware}


def default_precision(accelerator: str) -> str:
    """bf16 autocast where a GPU supports it; full fp32 elsewhere (bf16 on CPUs is slow)."""
    gpu = accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()
    return "bf16-mixed" if gpu and torch.cuda.is_bf16_supported() else "32-true"
