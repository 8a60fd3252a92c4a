"""The settings of `trainer.*` (handed to Lightning's Trainer) and of each `hardware=` choice."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from tinylm.errors import ConfigError
from tinylm.runs.folder import LAST_CHECKPOINT
from tinylm.schema import setting


@dataclass(kw_only=True)
class TrainerSettings:
    """The Trainer arguments conf/train.yaml ships, with the values tinylm can run; any other
    Trainer argument, added with +trainer.NAME=..., goes to Lightning, which checks it."""

    EXTRA_KEYS: ClassVar[bool] = True

    max_steps: int = setting(help="optimizer steps; the learning-rate schedule ends here", low=1)
    val_check_interval: int = setting(
        help="validate every N training batches, micro-batches under accumulation", low=1
    )
    check_val_every_n_epoch: int | None = setting(
        help="null: batches never run out, so validation is by step", low=1
    )
    limit_val_batches: int | float = setting(
        help="batches per validation, or a fraction ≤ 1.0 of the split; validation picks the "
        f"best checkpoint and writes {LAST_CHECKPOINT}, so a run cannot skip it",
        low=0,
        low_open=True,
    )
    log_every_n_steps: int = setting(help="steps between logged metrics", low=1)
    accumulate_grad_batches: int = setting(help="micro-batches per optimizer step", low=1)
    gradient_clip_val: float | None = setting(
        help="the largest global gradient norm; null or 0: no clipping", low=0
    )
    deterministic: bool | Literal["warn"] = setting(help="only deterministic torch kernels")
    # Trainer arguments conf/train.yaml does not ship, often added with +trainer.NAME=: checked
    # here, since Lightning takes them unchecked and fails on them mid-fit.
    max_epochs: int | None = setting(None, "passes over the data; -1: no limit", low=-1)
    min_steps: int | None = setting(None, "steps before early stopping may stop", low=0)
    limit_train_batches: int | float | None = setting(
        None, "batches per epoch, or a fraction ≤ 1.0", low=0, low_open=True
    )
    num_sanity_val_steps: int | None = setting(
        None, "validation batches run before training; -1: all", low=-1
    )
    overfit_batches: int | float | None = setting(None, "train on these batches only", low=0)
    detect_anomaly: bool | None = setting(None, "torch's anomaly detection (slow)")
    enable_progress_bar: bool | None = setting(None, "Lightning's progress bar")
    enable_model_summary: bool | None = setting(None, "the table of layers at the start")

    def __post_init__(self) -> None:
        batches = self.limit_val_batches
        if isinstance(batches, float) and batches > 1:
            raise ConfigError(
                f"trainer.limit_val_batches={batches} is not allowed: a number of batches is a "
                "whole number, and a fraction of the split is at most 1.0; change it."
            )


# What Lightning's Trainer takes as `precision` (lightning.fabric.connector._PRECISION_INPUT),
# named here so that a command's start does not import Lightning.
PRECISIONS = (
    "32-true", "bf16-mixed", "16-mixed", "bf16-true", "16-true", "64-true", "transformer-engine",
    "transformer-engine-float16", 64, 32, 16, "64", "32", "16", "bf16",
)  # fmt: skip


@dataclass(kw_only=True)
class HardwareSettings:
    accelerator: str = setting(
        help="where to train", choices=("auto", "cpu", "gpu", "cuda", "mps", "tpu")
    )
    devices: int | str | list[int] = setting(
        help="devices per machine: a count, auto, or a list of indices", low=0
    )
    num_nodes: int = setting(help="machines", low=1)
    strategy: str | dict = setting(help="auto, ddp, or a strategy's settings")
    precision: str | int | None = setting(
        help="null: bf16-mixed on a GPU that has it, else 32-true", choices=PRECISIONS
    )
