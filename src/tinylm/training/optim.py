"""Optimizers and the learning-rate schedule: linear warmup, then cosine decay to min_lr."""

from __future__ import annotations

import logging
import math

import torch
from torch import nn
from torch.utils._foreach_utils import _get_fused_kernels_supported_devices

from tinylm.errors import ConfigError
from tinylm.training.muon import build_muon_with_adamw, check_muon_is_available

log = logging.getLogger(__name__)
OPTIMIZERS = ("adamw", "adam", "sgd", "muon")
MUON_LR_ADJUSTMENTS = ("original", "match_rms_adamw")
WARMUP_MAX_FRACTION = 0.1


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
    name = config.get("name")
    if name not in OPTIMIZERS:
        raise ConfigError(f"optimizer.name must be one of {OPTIMIZERS}, not {name!r}.")
    lr = config["lr"]
    if not (math.isfinite(lr) and lr > 0):
        raise ConfigError(f"optimizer.lr must be a positive number, not {lr}.")
    if not 0.0 <= config["min_lr"] <= lr:
        raise ConfigError(
            f"optimizer.min_lr must lie between 0 and optimizer.lr ({lr}), not {config['min_lr']}."
        )
    if name == "muon":
        check_muon_config(config)
    for key, low, high in (
        ("weight_decay", 0.0, math.inf),
        ("eps", 1e-30, math.inf),
        ("momentum", 0.0, 1.0),
        ("warmup_steps", 0, math.inf),
        ("adamw_weight_decay", 0.0, math.inf),
        ("adamw_eps", 1e-30, math.inf),
        ("ns_steps", 1, 99),  # torch's Muon refuses 100 or more
    ):
        if key in config and not low <= config[key] <= high:
            raise ConfigError(
                f"optimizer.{key} must lie in [{low:g}, {high:g}], not {config[key]}."
                if math.isfinite(high)
                else f"optimizer.{key} must be at least {low:g}, not {config[key]}."
            )
    for key in ("betas", "adamw_betas"):
        betas = config.get(key)
        if betas is not None and (len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas)):
            raise ConfigError(f"optimizer.{key} must be two numbers in [0, 1), not {betas}.")


def check_muon_config(config: dict) -> None:
    """Muon's own settings: torch has it, AdamW's share has a learning rate, a known
    learning-rate adjustment (how Muon scales its step to a matrix's shape)."""
    check_muon_is_available()
    adamw_lr = config["adamw_lr"]
    if not (math.isfinite(adamw_lr) and adamw_lr > 0):
        raise ConfigError(f"optimizer.adamw_lr must be a positive number, not {adamw_lr}.")
    if config["adjust_lr_fn"] not in MUON_LR_ADJUSTMENTS:
        raise ConfigError(
            f"optimizer.adjust_lr_fn must be one of {MUON_LR_ADJUSTMENTS}, "
            f"not {config['adjust_lr_fn']!r}."
        )
