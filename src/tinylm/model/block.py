"""One transformer block: pre-norm attention and MLP, each added back to the residual.

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
from tinylm.model.mlp import make_mlp
from tinylm.model.norms import make_norm


class Block(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = make_norm(config, config.d_model)  # LayerNorm or RMSNorm (model.norm)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = make_norm(config, config.d_model)
        self.mlp = make_mlp(config)

    def forward(
        self,
        x: torch.Tensor,
        cache: LayerKVCache | None = None,
        rotation: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        # Pre-norm: normalise the input of each sub-layer, never the residual stream itself,
        # so gradients flow straight through the additions from the loss to the embeddings.
        x = x + self.attn(self.ln_1(x), cache, rotation)
        return x + self.mlp(self.ln_2(x))
