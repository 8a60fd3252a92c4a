"""A key/value cache: what each attention layer has already computed for the tokens seen so far.

Without a cache, generating token t+1 runs the whole model over all t tokens again. With one,
each layer keeps the keys and values of earlier positions, so a step feeds only the newest
token: its query attends to the cached keys, and its own key and value are appended.

Layout: per layer, keys and values of shape (B, K, capacity, D), allocated once for the whole
context (capacity = block_size) and filled from the left; `length` positions are valid. Keys are
stored as attention uses them: normalised (QK-norm) and rotated to their positions (rope).
Shapes: B batch, K key/value heads (n_kv_head: fewer than the H query heads under grouped-query
attention, which is what makes its cache smaller), T new tokens, S = length after appending,
D head size.
"""

from __future__ import annotations

import torch

from tinylm.model.config import GPTConfig


class LayerKVCache:
    """Keys and values of one attention layer."""

    def __init__(
        self, batch_size: int, config: GPTConfig, device: torch.device, dtype: torch.dtype
    ) -> None:
        shape = (batch_size, config.kv_heads, config.block_size, config.head_dim)
        self.keys = torch.zeros(shape, device=device, dtype=dtype)
        self.values = torch.zeros(shape, device=device, dtype=dtype)
        self.length = 0

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store the keys and values of T new positions, (B, K, T, D) each; return those of every
        position so far, (B, K, S, D) each."""
        end = self.length + k.size(2)
        if end > self.keys.size(2):
            raise ValueError(f"The KV cache holds {self.keys.size(2)} positions, not {end}.")
        self.keys[:, :, self.length : end] = k
        self.values[:, :, self.length : end] = v
        self.length = end
        return self.keys[:, :, :end], self.values[:, :, :end]

    def select(self, rows: torch.Tensor) -> None:
        """Keep the sequences `rows` (B',), in that order; a row may be repeated."""
        self.keys = self.keys.index_select(0, rows)
        self.values = self.values.index_select(0, rows)


class KVCache:
    """One LayerKVCache per block. `length` is the number of positions cached (the same in every
    layer once a forward pass has finished)."""

    def __init__(
        self, batch_size: int, config: GPTConfig, device: torch.device, dtype: torch.dtype
    ) -> None:
        self.layers = [
            LayerKVCache(batch_size, config, device, dtype) for _ in range(config.n_layer)
        ]

    @property
    def length(self) -> int:
        return self.layers[0].length

    def select(self, rows: torch.Tensor) -> None:
        """Reorder or duplicate the cached sequences (beam search keeps its best beams)."""
        for layer in self.layers:
            layer.select(rows)

    def clear(self) -> None:
        """Forget every position (the memory is kept and overwritten by the next tokens)."""
        for layer in self.layers:
            layer.length = 0
