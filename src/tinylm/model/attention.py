"""Causal multi-head self-attention: how each token gathers information from the ones before it.

Every token asks a question (its query), offers a label (its key) and carries content (its
value). A head scores each query against every key, scaled by 1/√D so the scores stay in the
range where softmax has gradients; the causal mask forbids looking ahead; softmax turns each
query's row of scores into weights that sum to 1; the head's output for a token is the
weighted sum of the values. H heads do this side by side on D-wide slices of the C channels,
so each can attend to something different, and a projection mixes their outputs.

Shapes: B batch, T time (tokens), C = d_model channels, H heads, D = C // H head size,
S positions attended to (S = T without a KV cache; cached ones + T with it).

Two implementations give the same numbers (tested): `sdpa`, PyTorch's fused kernel, for
speed, and `manual`, the formula written out step by step, to read. Only the manual path
computes the attention weights as a tensor, and its probes let forward hooks read them.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from tinylm.model.config import GPTConfig
from tinylm.model.kv_cache import LayerKVCache

# The tensors of the manual path that forward hooks can read, in the order they are computed.
PROBED = ("q", "k", "v", "scores", "weights", "heads")


class Probe(nn.Identity):
    """Returns its input unchanged. It gives a tensor a module name (blocks.0.attn.probe.weights)
    so that a forward hook can read it; tinylm.inspection draws attention maps and traces
    shapes this way. Without a hook it costs one function call."""


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.n_head = config.n_head
        self.head_dim = config.head_dim
        self.implementation = config.attention
        self.dropout = config.dropout
        # One matmul makes queries, keys and values for every head at once.
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model, bias=config.bias)
        self.proj = nn.Linear(config.d_model, config.d_model, bias=config.bias)
        self.attn_dropout = nn.Dropout(config.dropout)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.probe = nn.ModuleDict({name: Probe() for name in PROBED})  # no parameters
        # causal_mask[i, j] is True where query i may look at key j (j <= i).
        mask = torch.tril(torch.ones(config.block_size, config.block_size, dtype=torch.bool))
        self.register_buffer("causal_mask", mask, persistent=False)

    def forward(self, x: torch.Tensor, cache: LayerKVCache | None = None) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)  # 3 × (B, T, C)
        # Split channels into heads: (B, T, C) -> (B, H, T, D)
        q = q.view(B, T, self.n_head, self.head_dim).transpose(1, 2)
        k = k.view(B, T, self.n_head, self.head_dim).transpose(1, 2)
        v = v.view(B, T, self.n_head, self.head_dim).transpose(1, 2)
        if cache is not None:
            k, v = cache.append(k, v)  # (B, H, S, D): the cached positions, then these T
        S = k.size(2)
        # The T queries are the last T of S positions: query i sits at position S - T + i and
        # may look at keys 0 .. S - T + i, which are these rows of the full causal mask.
        mask = self.causal_mask[S - T : S, :S]  # (T, S)

        if self.implementation == "sdpa":
            # Fused kernel (flash / memory-efficient attention where the hardware has one).
            # is_causal aligns its mask to the top-left corner, which is right only when there
            # is no cached past (S == T); with one, the explicit rows of the mask are needed,
            # except for a single new token (decoding), which may look at every position.
            if S == T:
                masking = {"is_causal": True}
            elif T == 1:
                masking = {}
            else:
                masking = {"attn_mask": mask}
            y = F.scaled_dot_product_attention(
                q, k, v, dropout_p=self.dropout if self.training else 0.0, **masking
            )
        else:
            y = self.manual_attention(q, k, v, mask)  # (B, H, T, D)

        y = y.transpose(1, 2).contiguous().view(B, T, C)  # heads side by side again
        return self.resid_dropout(self.proj(y))

    def manual_attention(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """softmax(Q Kᵀ / √D + causal mask) V — the same numbers as the fused kernel.

        q (B, H, T, D); k, v (B, H, S, D); mask (T, S). Each self.probe.<name>(tensor) is the
        tensor itself, named for forward hooks.
        """
        q, k, v = self.probe.q(q), self.probe.k(k), self.probe.v(v)
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(self.head_dim)  # (B, H, T, S)
        scores = self.probe.scores(scores.masked_fill(~mask, float("-inf")))
        weights = self.probe.weights(F.softmax(scores, dim=-1))  # (B, H, T, S), rows sum to 1
        return self.probe.heads(self.attn_dropout(weights) @ v)  # (B, H, T, D)
