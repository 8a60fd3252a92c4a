"""Causal multi-head self-attention: how each token gathers information from the ones before it.

Every token asks a question (its query), offers a label (its key) and carries content (its
value). A head scores each query against every key, scaled by 1/√D so the scores stay in the
range where softmax has gradients; the causal mask forbids looking ahead; softmax turns each
query's row of scores into weights that sum to 1; the head's output for a token is the
weighted sum of the values. H heads do this side by side on D-wide slices of the C channels,
so each can attend to something different, and a projection mixes their outputs.

Grouped-query attention (model.n_kv_head = K < H): K key/value heads, each shared by H / K
query heads — fewer keys and values to compute and, above all, to keep in the KV cache.
Rotary positions (model.pos_encoding=rope) turn queries and keys by their positions; QK-norm
(model.qk_norm) normalises each head's queries and keys first, which keeps the scores bounded.

Shapes: B batch, T time (tokens), C = d_model channels, H query heads, K key/value heads,
D = C // H head size, S positions attended to (S = T without a KV cache; cached ones + T with it).

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
from tinylm.model.norms import make_norm
from tinylm.model.rotary import rotate

# The tensors of the manual path that forward hooks can read, in the order they are computed.
PROBED = ("q", "k", "v", "scores", "weights", "heads")


class Probe(nn.Identity):
    """Returns its input unchanged. It gives a tensor a module name (blocks.0.attn.probe.weights)
    so that a forward hook can read it; tinylm.inspection draws attention maps and traces
    shapes this way. Without a hook it costs one function call."""


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.n_head, self.n_kv_head = config.n_head, config.kv_heads
        self.head_dim = config.head_dim
        self.implementation = config.attention
        self.dropout = config.dropout
        # One matmul makes queries (H·D = C), keys and values (K·D each) for every head at once.
        self.kv_width = self.n_kv_head * self.head_dim
        self.qkv = nn.Linear(config.d_model, config.d_model + 2 * self.kv_width, bias=config.bias)
        self.q_norm = make_norm(config, self.head_dim) if config.qk_norm else None
        self.k_norm = make_norm(config, self.head_dim) if config.qk_norm else None
        self.proj = nn.Linear(config.d_model, config.d_model, bias=config.bias)
        self.attn_dropout = nn.Dropout(config.dropout)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.probe = nn.ModuleDict({name: Probe() for name in PROBED})  # no parameters
        # causal_mask[i, j] is True where query i may look at key j (j <= i).
        mask = torch.tril(torch.ones(config.block_size, config.block_size, dtype=torch.bool))
        self.register_buffer("causal_mask", mask, persistent=False)

    def forward(
        self,
        x: torch.Tensor,
        cache: LayerKVCache | None = None,
        rotation: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """x (B, T, C) -> (B, T, C). `rotation`: the rotary tables' cos and sin rows
        for these T positions, (T, 1, D) each, when positions are rotary."""
        B, T, C = x.shape
        q, k, v = self.qkv(x).split([C, self.kv_width, self.kv_width], dim=2)
        # Split channels into heads: (B, T, H·D) -> (B, T, H, D); keys, values (B, T, K, D)
        q = q.view(B, T, self.n_head, self.head_dim)
        k = k.view(B, T, self.n_kv_head, self.head_dim)
        v = v.view(B, T, self.n_kv_head, self.head_dim)
        # Norm and rotation act on each head's D channels, read here where they lie side by
        # side in memory (faster than after the transpose below).
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        if rotation is not None:
            q, k = rotate(q, *rotation), rotate(k, *rotation)
        # Heads before time, as attention reads them: (B, H, T, D); keys, values (B, K, T, D)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        if cache is not None:
            k, v = cache.append(k, v)  # (B, K, S, D): the cached positions, then these T
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
                q,
                k,
                v,
                dropout_p=self.dropout if self.training else 0.0,
                enable_gqa=self.n_kv_head != self.n_head,  # K heads serve H without copies
                **masking,
            )
        else:
            y = self.manual_attention(q, k, v, mask)  # (B, H, T, D)

        y = y.transpose(1, 2).contiguous().view(B, T, C)  # heads side by side again
        return self.resid_dropout(self.proj(y))

    def manual_attention(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """softmax(Q Kᵀ / √D + causal mask) V — the same numbers as the fused kernel.

        q (B, H, T, D); k, v (B, K, S, D); mask (T, S). Each self.probe.<name>(tensor) is the
        tensor itself, named for forward hooks.
        """
        if self.n_kv_head != self.n_head:  # key/value head j serves query heads j·H/K .. on
            k = k.repeat_interleave(self.n_head // self.n_kv_head, dim=1)  # (B, H, S, D)
            v = v.repeat_interleave(self.n_head // self.n_kv_head, dim=1)
        q, k, v = self.probe.q(q), self.probe.k(k), self.probe.v(v)
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(self.head_dim)  # (B, H, T, S)
        scores = self.probe.scores(scores.masked_fill(~mask, float("-inf")))
        weights = self.probe.weights(F.softmax(scores, dim=-1))  # (B, H, T, S), rows sum to 1
        return self.probe.heads(self.attn_dropout(weights) @ v)  # (B, H, T, D)
