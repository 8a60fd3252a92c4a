"""Hydra glue: instantiate groups of named objects, tell whether a job runs inside a sweep, and
check the kinds of the values given on the command line."""

from __future__ import annotations

from typing import Any

from hydra import compose
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf

from tinylm.errors import ConfigError


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


def check_override_types(cfg: DictConfig) -> None:
    """Refuse a command-line value of the wrong kind for its key (`trainer.max_steps=abc`,
    `trainer.deterministic=3`) in one sentence, before a command runs.

    The expected kind is that of the key's value in the config composed without the command
    line's key=value overrides (group choices such as model=small kept). Numbers take any
    number (Lightning reads val_check_interval=0.5 as a fraction), and null is always allowed
    (it switches a setting off); a key whose default is null or absent takes anything.
    """
    if not HydraConfig.initialized():
        return
    hydra = HydraConfig.get()
    overrides = OverridesParser.create().parse_overrides(list(hydra.overrides.task))
    groups = set(hydra.runtime.choices)
    values = [o for o in overrides if o.key_or_group not in groups and not o.is_delete()]
    if not values:
        return
    reference = compose(
        hydra.job.config_name,
        overrides=[o.input_line for o in overrides if o.key_or_group in groups],
    )
    for override in values:
        key = override.key_or_group
        expected = OmegaConf.select(reference, key, default=None, throw_on_resolution_failure=False)
        value = OmegaConf.select(cfg, key, default=None, throw_on_resolution_failure=False)
        kind = kind_of(expected)
        if kind is not None and value is not None and kind_of(value) != kind:
            if isinstance(expected, DictConfig | ListConfig):
                expected = OmegaConf.to_container(expected)
            raise ConfigError(
                f"{key} takes {kind}, not {override.value()!r} (its default is {expected!r})."
            )


def kind_of(value: Any) -> str | None:
    """What a config value is, for telling a user what a key takes (None: anything)."""
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, ListConfig | list):
        return "a list"
    if isinstance(value, DictConfig | dict):
        return "a group of settings"
    return None  # strings take anything Hydra parsed: `name=2024` is a fine name
