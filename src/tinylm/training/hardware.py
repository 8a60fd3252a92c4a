"""The hardware a run trains on: the Trainer's device arguments, the global batch over several
devices, Lightning's FSDP for a GPT, and DDP inside Hydra sweeps."""

from __future__ import annotations

import importlib.util
import os
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


def check_hardware_is_here(hardware: DictConfig) -> None:
    """What `hardware.*` asks of this machine, before Lightning refuses it with a traceback:
    hardware=gpu without a CUDA GPU (mps without Apple's, tpu without torch_xla),
    hardware=fsdp without CUDA."""
    accelerator = hardware.get("accelerator", "auto")
    missing = (
        (accelerator in ("gpu", "cuda") and not torch.cuda.is_available())
        or (accelerator == "mps" and not torch.backends.mps.is_available())
        or (accelerator == "tpu" and importlib.util.find_spec("torch_xla") is None)
    )
    if missing:
        raise ConfigError(
            f"hardware.accelerator={accelerator}, but this machine has no such device; use "
            "hardware=auto (a GPU when there is one, else the CPU) or hardware=cpu."
        )
    if is_fsdp(hardware.get("strategy")) and (
        accelerator == "cpu" or not torch.cuda.is_available()
    ):
        raise ConfigError(
            "hardware=fsdp shards the model over CUDA GPUs (Lightning's FSDP runs on nothing "
            "else), and this run has none; use hardware=ddp hardware.accelerator=cpu for several "
            "processes on the CPU, or hardware=cpu."
        )


def is_fsdp(strategy: Any) -> bool:
    """Whether `hardware.strategy` shards the model: conf/hardware/fsdp.yaml's, or one of
    Lightning's FSDP strategies by name (fsdp, fsdp_cpu_offload)."""
    if isinstance(strategy, DictConfig | dict):
        return strategy.get("_target_") == f"{__name__}.{fsdp_strategy.__name__}"
    return isinstance(strategy, str) and strategy.startswith("fsdp")


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


def check_processes_can_start(trainer: L.Trainer) -> None:
    """Refuse the processes Lightning could not start, or would start wrongly, on its own.

    Several machines (hardware.num_nodes > 1) need their processes started by srun or torchrun
    on each machine, or by hand with MASTER_ADDR and NODE_RANK set; started plainly, this one
    process would wait for the others forever.

    Lightning starts the other processes of hardware=ddp on one machine by running the
    command line again (sys.argv) with the run folder added. Inside a Hydra multirun that
    command line is the whole sweep, so every child would start sweeps of its own."""
    # LightningEnvironment is the one where Lightning starts the processes; under torchrun or
    # SLURM (their own environments) every process was started already. Its own test for that,
    # LOCAL_RANK in os.environ, cannot be trusted here: an earlier DDP job of the sweep left it.
    # A single-device strategy has no cluster environment: nothing to start.
    environment = getattr(trainer.strategy, "cluster_environment", None)
    started_by_lightning = isinstance(environment, LightningEnvironment)
    if started_by_lightning and trainer.num_nodes > 1 and "MASTER_ADDR" not in os.environ:
        raise ConfigError(
            f"hardware.num_nodes={trainer.num_nodes}, but this process was not started by srun "
            "or torchrun, so it would wait for the other machines forever; start one process "
            "per device on each machine as conf/hardware/multinode.yaml shows, or set "
            "hardware.num_nodes=1."
        )
    if not in_sweep() or trainer.num_devices == 1 or not started_by_lightning:
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
