"""Hydra glue: instantiate groups of named objects, tell whether a job runs inside a sweep."""

from __future__ import annotations

from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig


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


def command_line_overrides() -> list[str]:
    """The overrides this job was started with (`model=tiny`, `optimizer.lr=1e-3`, ...); none
    when the config was composed without Hydra's app (tests)."""
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def in_sweep() -> bool:
    """Whether this process runs a job of a Hydra multirun (a sweep, an Optuna search)."""
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
