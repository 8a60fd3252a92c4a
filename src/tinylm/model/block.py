"""One transformer block: pre-LayerNorm attention and MLP, each added back to the residual.

The residual stream x (B, T, C) runs from the embeddings to the LM head; every block reads it
and adds to it. Attention is the only place where positions exchange information; the MLP then
works on each position alone, widening to F channels and back, which is where most of a
block's parameters sit. Every step keeps the shape (B, T, C), so blocks stack.
"""

from __future__ import annotations

import torch
from torch import nn

from tinylm.model.attention import CausalSelfAttention
from tinylm.model.config import GPTConfig
from tinylm.model.kv_cache import LayerKVCache


class MLP(nn.Module):
    """Position-wise feed-forward: expand to d_ff, GELU, project back to d_model."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.fc = nn.Linear(config.d_model, config.d_ff, bias=config.bias)
        self.gelu = nn.GELU(approximate="tanh" if config.gelu == "tanh" else "none")
        self.proj = nn.Linear(config.d_ff, config.d_model, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.proj(self.gelu(self.fc(x))))  # (B, T, C) -> (B, T, C)


class Block(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.d_model, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.d_model, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, cache: LayerKVCache | None = None) -> torch.Tensor:
        # Pre-norm: normalise the input of each sub-layer, never the residual stream itself,
        # so gradients flow straight through the additions from the loss to the embeddings.
        x = x + self.attn(self.ln_1(x), cache)
        return x + self.mlp(self.ln_2(x))
