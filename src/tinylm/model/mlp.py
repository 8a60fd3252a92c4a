"""The position-wise feed-forward layer: each position alone, widened to F channels and back.

Three shapes of it (model.mlp):
- gelu:   proj(GELU(fc(x))) — GPT-2's.
- relu2:  proj(ReLU(fc(x))²) — squared ReLU (So et al. 2021, Primer), nanochat's and
          modded-nanogpt's: as cheap as GELU and trains faster at small scale.
- swiglu: proj(SiLU(gate(x)) · up(x)) — Llama's gated unit (Shazeer 2020): one matrix more,
          so for the same parameters F is usually 2/3 of the others'.
Shapes: (B, T, C) -> (B, T, F) -> (B, T, C).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tinylm.model.config import GPTConfig


class ReLUSquaredFunction(torch.autograd.Function):
    """y = ReLU(x)², with its gradient 2·ReLU(x)·g written out from the one tensor it keeps.

    Autograd's own backward of F.relu(x).square() makes four passes over the (B, T, F)
    activations (the square's gradient, a copy, two products, ReLU's mask), the largest tensors
    of a block; this one makes two, and keeps ReLU(x) alone: a training step of nanoGPT's
    Shakespeare model took 10% less per block on a CPU (docs/recipes.md). The same numbers,
    bit for bit (tests/model/test_switches.py).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        relu = F.relu(x)
        ctx.save_for_backward(relu)
        return relu * relu

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (relu,) = ctx.saved_tensors
        return (grad * relu).mul_(2.0)


class ReLUSquared(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ReLUSquaredFunction.apply(x)


class MLP(nn.Module):
    """fc, a non-linearity (GELU or ReLU²), proj."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.fc = nn.Linear(config.d_model, config.d_ff, bias=config.bias)
        if config.mlp == "relu2":
            self.act = ReLUSquared()
        else:
            self.act = nn.GELU(approximate="tanh" if config.gelu == "tanh" else "none")
        self.proj = nn.Linear(config.d_ff, config.d_model, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.proj(self.act(self.fc(x))))  # (B, T, C) -> (B, T, F) -> (B, T, C)


class SwiGLU(nn.Module):
    """proj(SiLU(gate(x)) · up(x)): the gate decides, channel by channel, how much of up passes."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.gate = nn.Linear(config.d_model, config.d_ff, bias=config.bias)
        self.up = nn.Linear(config.d_model, config.d_ff, bias=config.bias)
        self.proj = nn.Linear(config.d_ff, config.d_model, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = F.silu(self.gate(x)) * self.up(x)  # (B, T, F)
        return self.dropout(self.proj(hidden))  # (B, T, C)


def make_mlp(config: GPTConfig) -> nn.Module:
    return SwiGLU(config) if config.mlp == "swiglu" else MLP(config)
