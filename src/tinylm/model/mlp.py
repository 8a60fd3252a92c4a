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
    """y = ReLU(x)², with its gradient 2·ReLU(x)·g written out.

    Autograd's own backward of F.relu(x).square() makes four passes over the (B, T, F)
    activations (the square's gradient, a copy, two products, ReLU's mask) and allocates as
    many tensors of that size, the largest of a block; this one allocates one each way (on a
    CPU, a new tensor of that size can cost more than a pass over it) and keeps x, which is
    alive anyway, rather than ReLU(x). A block of nanoGPT's Shakespeare model trained 10% faster
    on a CPU (docs/recipes.md), with the same numbers, bit for bit (tests/model/test_switches.py).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        relu = F.relu(x)
        return relu.mul_(relu)  # (B, T, F)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return F.relu(x).mul_(grad).mul_(2.0)


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
