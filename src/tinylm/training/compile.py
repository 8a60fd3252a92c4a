"""torch.compile for training: whether a run compiles, and a failure told in one sentence."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from tinylm.errors import ConfigError


def check_compile_setting(setting: object) -> str | bool:
    """`compile` of conf/train.yaml: auto, true or false (Hydra reads the last two as booleans)."""
    if not (setting == "auto" or isinstance(setting, bool)):
        raise ConfigError(f"compile must be auto, true or false, not {setting!r}.")
    return setting


def should_compile(setting: str | bool, device: torch.device) -> bool:
    """Whether a run on `device` compiles its GPT.

    auto compiles on CUDA only. On the CPU, compiling nanoGPT's Shakespeare recipe took longer
    than it saved over its 2,000 steps (docs/performance.md); on Apple's MPS torch.compile is
    still a prototype.
    """
    if setting == "auto":
        return device.type == "cuda"
    return bool(setting)


def compile_model(model: nn.Module) -> Callable[..., torch.Tensor]:
    """torch.compile's wrapper of `model` (compiled at its first call), whose failures to compile
    become a ConfigError that says how to do without."""
    try:
        compiled = torch.compile(model)
    except RuntimeError as error:  # e.g. a Python version this torch cannot compile for
        raise compile_failed(error) from error

    def run(*args: torch.Tensor) -> torch.Tensor:
        try:
            return compiled(*args)
        except torch._dynamo.exc.TorchDynamoException as error:
            raise compile_failed(error) from error

    return run


def compile_failed(error: Exception) -> ConfigError:
    lines = str(error).strip().splitlines()
    reason = f"{type(error).__name__}: {lines[0][:200]}" if lines else type(error).__name__
    return ConfigError(
        f"torch.compile could not compile the model ({reason}); set compile=false to train "
        "without compiling."
    )
