"""Choosing the device a script runs a model on."""

from __future__ import annotations

import torch

from tinylm.errors import ConfigError

DEVICE_TYPES = ("cpu", "cuda", "mps")


def resolve_device(name: str) -> torch.device:
    """`auto`: a CUDA GPU, else Apple's MPS, else the CPU. A named device must be present."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        device = None
    if device is None or device.type not in DEVICE_TYPES:
        raise ConfigError(f"device must be auto, cpu, cuda (or cuda:N) or mps, not {name!r}.")
    available = {
        "cpu": True,
        "cuda": torch.cuda.is_available(),
        "mps": torch.backends.mps.is_available(),
    }
    if not available[device.type]:
        raise ConfigError(f"device={name}, but this machine has no such device; use device=auto.")
    return device
