"""Feeding growing sequences to the model one token at a time, with or without a KV cache.

The sliding window. The model was trained with positions 0 .. block_size - 1 and learned
(or fixed sinusoidal) position encodings, so it can read at most block_size tokens, and a
cached key is only valid for the position it was computed at: a cache cannot simply drop its
oldest entry and shift the rest. So the window moves in jumps. When a sequence would outgrow
the context, the window restarts at its newest `block_size // 2` tokens: they are run through
the model again (re-prefilled) at positions 0 .. block_size // 2 - 1, and decoding goes on one
token at a time until the window is full again. The model therefore always sees between half
a context and a full context of the most recent tokens, and a re-prefill costs one forward
pass of half a context every block_size // 2 tokens.

Without a cache, every step runs the model on exactly the same window, so cached and uncached
decoding read the same tokens at the same positions and choose the same tokens, also past the
context length (tested).

Shapes: B sequences, L tokens so far (prompt + generated), V vocabulary.
"""

from __future__ import annotations

import torch

from tinylm.model import GPT


class SlidingWindowDecoder:
    """Holds B sequences and the model's next-token logits for each; `append` adds one token
    to every sequence and updates the logits."""

    def __init__(self, model: GPT, prompts: torch.Tensor, use_cache: bool) -> None:
        """prompts: (B, T) token ids, T <= block_size."""
        self.model = model
        self.block_size = model.config.block_size
        self.keep = max(1, self.block_size // 2)  # window length right after a slide
        # Every token so far, also those left out of the window: the first `length` columns of
        # a buffer that doubles when full, rather than a new tensor per token.
        self.buffer = prompts.new_empty(prompts.size(0), 2 * prompts.size(1) + self.block_size)
        self.buffer[:, : prompts.size(1)] = prompts
        self.length = prompts.size(1)
        self.window_start = 0
        self.cache = model.new_cache(prompts.size(0)) if use_cache else None
        self.logits = self._run(prompts)  # (B, V)

    @property
    def tokens(self) -> torch.Tensor:
        """(B, L): every token of each sequence so far."""
        return self.buffer[:, : self.length]

    def append(self, next_tokens: torch.Tensor) -> torch.Tensor:
        """Add next_tokens (B,) to the sequences; return the logits that follow, (B, V)."""
        if self.length == self.buffer.size(1):
            self.buffer = torch.cat([self.buffer, torch.empty_like(self.buffer)], dim=1)
        self.buffer[:, self.length] = next_tokens
        self.length += 1
        if self.length - self.window_start > self.block_size:
            self.window_start = self.length - self.keep
            if self.cache is not None:
                self.cache.clear()
        self.logits = self._run(next_tokens[:, None])  # (B, 1) new tokens
        return self.logits

    def select(self, rows: torch.Tensor) -> None:
        """Keep the sequences `rows` (B',), in that order, repeats allowed (beam search)."""
        self.buffer = self.buffer.index_select(0, rows)
        self.logits = self.logits.index_select(0, rows)
        if self.cache is not None:
            self.cache.select(rows)

    def _run(self, new_tokens: torch.Tensor) -> torch.Tensor:
        """Logits after the window, (B, V): the model reads only `new_tokens` when the cache
        holds everything before them, and the whole window otherwise."""
        if self.cache is None or self.cache.length == 0:
            new_tokens = self.tokens[:, self.window_start :]  # (B, <= block_size)
        logits = self.model(new_tokens, cache=self.cache, last_only=True)  # (B, 1, V)
        return logits[:, -1].float()  # sampling arithmetic in fp32, whatever the model's dtype
