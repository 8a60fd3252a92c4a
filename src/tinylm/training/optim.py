"""Optimizers and the learning-rate schedule: linear warmup, then cosine decay to min_lr."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.utils._foreach_utils import _get_fused_kernels_supported_devices

from tinylm.errors import ConfigError
from tinylm.schema import GroupBy, check_group, setting
from tinylm.training.muon import build_muon_with_adamw, check_muon_is_available

log = logging.getLogger(__name__)
WARMUP_MAX_FRACTION = 0.1


@dataclass(kw_only=True)
class ScheduleSettings:
    """What every optimizer choice (conf/optimizer/*.yaml) takes: the learning-rate schedule."""

    lr: float = setting(
        help="peak learning rate, reached at the end of warmup", low=0, low_open=True
    )
    min_lr: float = setting(
        help="learning rate at the end of the cosine decay, ≤ optimizer.lr", low=0
    )
    warmup_steps: int = setting(
        help="optimizer steps of linear warmup, at most a tenth of trainer.max_steps", low=0
    )
    weight_decay: float = setting(help="decay of the weight matrices", low=0)

    def __post_init__(self) -> None:
        if self.min_lr > self.lr:
            raise ConfigError(
                f"optimizer.min_lr={self.min_lr} is above optimizer.lr={self.lr}: the schedule "
                "decays from lr to min_lr; lower min_lr or raise lr."
            )


@dataclass(kw_only=True)
class AdamWSettings(ScheduleSettings):
    name: Literal["adamw"]
    betas: list[float] = setting(
        help="decay rates of the gradient's running mean and square", low=0, high=1,
        high_open=True, length=2,
    )  # fmt: skip
    eps: float = setting(help="added to the denominator, for stability", low=0, low_open=True)


@dataclass(kw_only=True)
class AdamSettings(AdamWSettings):
    name: Literal["adam"]


@dataclass(kw_only=True)
class SGDSettings(ScheduleSettings):
    name: Literal["sgd"]
    momentum: float = setting(help="fraction of the previous update kept", low=0, high=1)
    nesterov: bool = setting(help="Nesterov momentum")


@dataclass(kw_only=True)
class MuonSettings(ScheduleSettings):
    """lr, weight_decay and min_lr are Muon's (the blocks' matrices); adamw_* are AdamW's, for
    the embedding, the head, norms and biases, whose learning rate decays by the same factor."""

    name: Literal["muon"]
    momentum: float = setting(help="fraction of the previous update kept", low=0, high=1)
    nesterov: bool = setting(help="Nesterov momentum")
    ns_steps: int = setting(
        help="Newton–Schulz iterations that orthogonalise each update; torch takes fewer than 100",
        low=1, high=99,
    )  # fmt: skip
    adjust_lr_fn: str = setting(
        help="how Muon scales its step to a matrix's shape",
        choices=("original", "match_rms_adamw"),
    )
    adamw_lr: float = setting(help="AdamW's peak learning rate", low=0, low_open=True)
    adamw_betas: list[float] = setting(
        help="AdamW's decay rates", low=0, high=1, high_open=True, length=2
    )
    adamw_eps: float = setting(help="AdamW's eps", low=0, low_open=True)
    adamw_weight_decay: float = setting(help="AdamW's decay of the embedding and head", low=0)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_muon_is_available()


# One schema per `optimizer=` choice, picked by optimizer.name; a new optimizer adds its own.
OPTIMIZER_SETTINGS = {
    "adamw": AdamWSettings, "adam": AdamSettings, "sgd": SGDSettings, "muon": MuonSettings,
}  # fmt: skip
OPTIMIZERS = tuple(OPTIMIZER_SETTINGS)


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Decay matrices (Linear and embedding weights), never biases or LayerNorm gains.

    Shrinking a bias or a gain towards zero does not make the model simpler, it only fights
    the normalisation; decay is a prior on the matrices that mix features. They are found by
    layer type rather than by shape because under FSDP (hardware=fsdp) the optimizer is built
    after sharding, when every parameter is a flat 1-D view of its shard.
    """
    matrices = {id(m.weight) for m in model.modules() if isinstance(m, nn.Linear | nn.Embedding)}
    params = [p for p in model.parameters() if p.requires_grad]
    return [
        {"params": [p for p in params if id(p) in matrices], "weight_decay": weight_decay},
        {"params": [p for p in params if id(p) not in matrices], "weight_decay": 0.0},
    ]


def has_fused_adam(parameters: list[nn.Parameter]) -> bool:
    """Whether torch has a fused Adam(W) kernel for the device of every parameter (CUDA, CPU and
    MPS among them, from torch 2.4): one kernel updates every parameter at once."""
    devices = set(_get_fused_kernels_supported_devices())
    return all(p.device.type in devices and p.is_floating_point() for p in parameters)


def build_optimizer(model: nn.Module, config: dict, fused: bool = True) -> torch.optim.Optimizer:
    """The optimizer a `conf/optimizer/*.yaml` describes, for the model on its device.

    Adam(W) runs fused wherever torch can: on the CPU, one step of nanoGPT's Shakespeare model
    took 1.3 ms fused, 7.5 ms with torch's default per-parameter loop and 10.6 ms with foreach
    (multi-tensor) kernels (docs/performance.md); on CUDA, fused is torch's fastest too.
    fused=False keeps torch's default kernels.
    """
    check_optimizer_config(config)
    if config["name"] == "muon":
        groups = parameter_groups(model, config["adamw_weight_decay"])
        parameters = [p for group in groups for p in group["params"]]
        return build_muon_with_adamw(model, config, groups, fused and has_fused_adam(parameters))
    groups = parameter_groups(model, config["weight_decay"])
    if config["name"] == "sgd":
        return torch.optim.SGD(
            groups, lr=config["lr"], momentum=config["momentum"], nesterov=config["nesterov"]
        )
    optimizer_class = torch.optim.AdamW if config["name"] == "adamw" else torch.optim.Adam
    parameters = [p for group in groups for p in group["params"]]
    return optimizer_class(
        groups,
        lr=config["lr"],
        betas=tuple(config["betas"]),
        eps=config["eps"],
        fused=(fused and has_fused_adam(parameters)) or None,
    )


def warmup_steps_for(requested: int, total_steps: int) -> int:
    """Warmup never takes more than a tenth of the run, so a short run still reaches its peak
    learning rate early and spends the rest decaying (300 steps -> at most 30 of warmup)."""
    return max(0, min(requested, int(total_steps * WARMUP_MAX_FRACTION)))


def capped_warmup_note(requested: int, total_steps: int) -> str | None:
    """The line that says a warmup was cut to a tenth of the run, or None when it was not."""
    warmup = warmup_steps_for(requested, total_steps)
    if warmup == requested:
        return None
    return (
        f"optimizer.warmup_steps={requested} is more than a tenth of trainer.max_steps="
        f"{total_steps}: warming up for {warmup} steps ({WARMUP_MAX_FRACTION:.0%} of the run)."
    )


class WarmupCosine:
    """Multiplier of the peak learning rate at optimizer step `step` (for torch's LambdaLR).
    One multiplier for every parameter group: under optimizer=muon, Muon's and AdamW's
    learning rates rise and decay together, each from its own peak.

    0 -> warmup: rises linearly from lr/warmup to lr.
    warmup -> total: half a cosine from lr down to min_lr.
    after total: stays at min_lr.
    An object rather than a closure so the scheduler's state_dict holds plain numbers.
    """

    def __init__(self, warmup_steps: int, total_steps: int, min_ratio: float) -> None:
        self.warmup_steps = warmup_steps
        self.total_steps = total_steps
        self.min_ratio = min_ratio

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        if step >= self.total_steps:
            return self.min_ratio
        progress = (step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps)
        cosine = 0.5 * (1.0 + math.cos(math.pi * progress))  # 1 -> 0
        return self.min_ratio + (1.0 - self.min_ratio) * cosine


class ConfiguredSchedule(torch.optim.lr_scheduler.LambdaLR):
    """A LambdaLR that takes nothing but the step from a checkpoint: the optimizer's settings
    and the schedule stay those this run was configured with.

    Resuming, Lightning loads the optimizer's state — its moments, and each parameter group's
    settings (lr, betas, weight decay) — and the scheduler's — the step, the peak learning rate
    and the schedule's own numbers (its length, warmup and min_lr). Loaded as torch loads them,
    `resume=<run> optimizer.lr=...` or a larger trainer.max_steps would train on at the
    checkpoint's learning rate while the run folder records the new settings. So after the
    optimizer's state is loaded, its groups get this run's settings back; and loading this
    scheduler sets only the step, with the learning rate this schedule gives at that step.
    A learning rate that differs from the checkpoint's schedule is said in one line.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, schedule: WarmupCosine) -> None:
        super().__init__(optimizer, schedule)
        self.configured_groups = [
            {key: value for key, value in group.items() if key not in ("params", "lr")}
            for group in optimizer.param_groups
        ]
        optimizer.register_load_state_dict_post_hook(self.restore_configured_groups)

    def restore_configured_groups(self, optimizer: torch.optim.Optimizer) -> None:
        for group, configured in zip(optimizer.param_groups, self.configured_groups, strict=True):
            group.update(configured)

    def load_state_dict(self, state_dict: dict) -> None:
        self.last_epoch = state_dict["last_epoch"]  # the optimizer steps taken
        self._step_count = state_dict["_step_count"]
        lrs = [base * schedule(self.last_epoch)
               for base, schedule in zip(self.base_lrs, self.lr_lambdas, strict=True)]  # fmt: skip
        for group, lr in zip(self.optimizer.param_groups, lrs, strict=True):
            group["lr"] = lr
        self._last_lr = lrs
        checkpoint_lr = state_dict["_last_lr"][0]
        if not math.isclose(lrs[0], checkpoint_lr, rel_tol=1e-6):
            schedule = self.lr_lambdas[0]
            log.info(
                f"From step {self.last_epoch:,} the learning rate follows this run's settings: "
                f"{lrs[0]:.3g} now (the checkpoint's schedule had {checkpoint_lr:.3g}), on a "
                f"schedule re-planned to end at step {schedule.total_steps:,} at "
                f"{self.base_lrs[0] * schedule.min_ratio:.3g}."
            )


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: dict, total_steps: int
) -> ConfiguredSchedule:
    if total_steps <= 0:
        raise ConfigError("trainer.max_steps must be a positive number of optimizer steps.")
    schedule = WarmupCosine(
        warmup_steps_for(config["warmup_steps"], total_steps),
        total_steps,
        min_ratio=config["min_lr"] / config["lr"],
    )
    return ConfiguredSchedule(optimizer, schedule)


def check_optimizer_config(config: dict) -> None:
    """Refuse the values no optimizer or schedule can use, each in one sentence naming the key:
    checked before a run starts, rather than met as torch's error in its first step."""
    check_group(config, GroupBy("name", OPTIMIZER_SETTINGS), "optimizer")
