"""Hydra glue: instantiate groups of named objects, build the Trainer's arguments, and tell
whether a job runs inside a sweep."""

from __future__ import annotations

from typing import Any

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf


def instantiate_dict(group: DictConfig | None) -> dict[str, Any]:
    """Instantiate every entry of a group such as `callbacks:` or `logger:`; skip null ones, so
    `callbacks.loss_curve=null` on the command line switches one off."""
    if not group:
        return {}
    return {
        name: instantiate(node, _convert_="all")
        for name, node in group.items()
        if node is not None and "_target_" in node
    }


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


def command_line_overrides() -> list[str]:
    """The overrides this job was started with (`model=tiny`, `optimizer.lr=1e-3`, ...); none
    when the config was composed without Hydra's app (tests)."""
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def in_sweep() -> bool:
    """Whether this process runs a job of a Hydra multirun (a sweep, an Optuna search)."""
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
