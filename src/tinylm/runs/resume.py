"""Resuming a run in its own folder: `python scripts/train.py resume=<run folder> [overrides]`.

The run's composed config (<run>/.hydra/config.yaml) is the base; the overrides on the command
line apply on top of it, and checkpoints/last.ckpt is the state. Hydra already runs in the same
folder (runs.claim.run_dir) without writing its own record there; the run's config and
overrides are updated here, once checked, so that the next resume starts from what this one
ran. What the weights and the position in the data depend on — the model, the tokenizer, the
data and the seed — cannot change, nor can the optimizer (its state is the checkpoint's); its
settings and the schedule can, from the resumed step on (training.optim.ConfiguredSchedule).
A run that has trained all its steps has nothing to do, and fewer steps are refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from omegaconf import DictConfig, OmegaConf

from tinylm.checkpoint import read_checkpoint
from tinylm.errors import ConfigError
from tinylm.runs.folder import RunFolder
from tinylm.utils.files import write_atomically

KEPT = ("model", "tokenizer", "data", "seed", "optimizer.name")
# Groups that set keys all over the config (`# @package _global_`): a resumed run keeps its own.
RECIPES = ("experiment", "debug", "hparams_search")


@dataclass
class Resume:
    """A run to continue in its folder: its config with this command's overrides on top, and
    the optimizer steps its last.ckpt has taken."""

    run: RunFolder
    config: DictConfig  # ckpt_path at the run's last.ckpt
    overrides: list[Override]  # this command's, those that apply to the run
    reached_step: int

    def nothing_to_do(self) -> str | None:
        """The sentence that says so when the run has trained all its steps, else None; fewer
        steps than the run has trained are refused (call it once the settings are checked)."""
        max_steps = self.config.trainer.max_steps
        if max_steps < self.reached_step:
            raise ConfigError(
                f"trainer.max_steps={max_steps:,} is fewer than the {self.reached_step:,} steps "
                f"the run in {self.run.path} has trained; a resumed run cannot go back: give a "
                "larger trainer.max_steps, or start a new run."
            )
        if self.reached_step < max_steps:
            return None
        status = (self.run.read_result() or {}).get("status", "no result")
        return (
            f"The run in {self.run.path} has trained all its {self.reached_step:,} steps "
            f"(result: {status}); nothing to do, nothing changed. To train it further, resume "
            "it with a larger trainer.max_steps."
        )

    def record(self) -> DictConfig:
        """Write the config and the overrides this resume runs with into the run folder, so that
        the folder records what ran and the next resume starts from it; return the config."""
        write_atomically(self.run.config, OmegaConf.to_yaml(self.config))
        write_atomically(self.run.overrides, merged_overrides(self.run, self.overrides))
        return self.config


def open_resume(cfg: DictConfig, overrides: list[str]) -> Resume:
    """The run that cfg.resume names, with `overrides` (this command line) on top of its config;
    what the run cannot take is refused in one sentence. Nothing is written yet."""
    if cfg.get("ckpt_path"):
        raise ConfigError(
            "Give resume= (continue a run in its own folder) or ckpt_path= (start a new run "
            "from a checkpoint), not both."
        )
    run_folder = RunFolder.to_resume(cfg.resume, Path(cfg.paths.log_dir) / cfg.task_name / "runs")
    folder = run_folder.path
    if folder != Path(cfg.paths.output_dir).resolve():
        raise ConfigError(
            f"resume={cfg.resume} runs in {folder}, but hydra.run.dir says "
            f"{cfg.paths.output_dir}; leave hydra.run.dir out when resuming."
        )
    run = OmegaConf.load(run_folder.config)
    new = [o for o in OverridesParser.create().parse_overrides(overrides) if applies_to_run(o)]
    for override in new:
        key = override.key_or_group
        if key in RECIPES:
            raise ConfigError(
                f"{key}= cannot be given with resume=: a resumed run keeps its recipe; change "
                "single settings instead, e.g. trainer.max_steps=..."
            )
        if override.is_delete():
            delete(run, key)
            continue
        for kept in KEPT:
            if kept == key or kept.startswith(f"{key}.") or key.startswith(f"{kept}."):
                inner = key if key.startswith(f"{kept}.") else kept
                refuse_a_change(run, inner, OmegaConf.select(cfg, inner), folder)
        OmegaConf.update(run, key, OmegaConf.select(cfg, key), merge=False, force_add=True)
    run.resume = str(folder)
    run.ckpt_path = str(run_folder.last_checkpoint)
    OmegaConf.set_struct(run, True)  # like the config Hydra hands a command
    reached = read_checkpoint(run_folder.last_checkpoint).get("global_step", 0)
    return Resume(run_folder, run, new, reached)


def applies_to_run(override) -> bool:
    key = override.key_or_group
    return key != "resume" and not key.startswith("hydra")


def delete(config: DictConfig, key: str) -> None:
    parent, _, name = key.rpartition(".")
    node = OmegaConf.select(config, parent) if parent else config
    if isinstance(node, DictConfig) and name in node:
        del node[name]


def refuse_a_change(run: DictConfig, key: str, value: Any, folder: Path) -> None:
    """A ConfigError naming the first setting under `key` that `value` would change."""
    before = plain(OmegaConf.select(run, key))
    difference = first_difference(before, plain(value), key)
    if difference is not None:
        name, old, new = difference
        raise ConfigError(
            f"resume cannot change {name}: the run in {folder} has {old!r}, this command asks "
            f"for {new!r}. A resumed run keeps its {', '.join(KEPT)}; start a new run to change "
            "them."
        )


def plain(value: Any) -> Any:
    if isinstance(value, DictConfig):
        return OmegaConf.to_container(value, resolve=True)
    return value


def first_difference(old: Any, new: Any, name: str) -> tuple[str, Any, Any] | None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(old.keys() | new.keys()):
            difference = first_difference(old.get(key), new.get(key), f"{name}.{key}")
            if difference is not None:
                return difference
        return None
    return None if old == new else (name, old, new)


def run_overrides(run: RunFolder) -> list[str]:
    """The overrides that made the run, a resume's included."""
    return [str(override) for override in OmegaConf.load(run.overrides)]


def merged_overrides(run: RunFolder, new: list) -> str:
    """The run's overrides with this command's on top (a key given again replaces its earlier
    value), so that a run's overrides still say how it differs from the defaults."""
    parser = OverridesParser.create()
    earlier = run_overrides(run)
    replaced = {o.key_or_group for o in new}
    kept = [text for text in earlier if parser.parse_override(text).key_or_group not in replaced]
    return OmegaConf.to_yaml(OmegaConf.create(kept + [o.input_line for o in new]))
