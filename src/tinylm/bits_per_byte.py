"""Bits per byte: a loss in a unit that every tokenizer shares.

A loss in nats per token depends on how much text a token holds, so a char model's loss and a
BPE model's cannot be compared. Dividing the loss summed over the targets by ln 2 × the UTF-8
bytes those targets stand for gives bits per byte, which can. Special tokens (end of text) stand
for no bytes, and their losses are left out of the sum (nanochat's rule). The bytes come from
a per-token table (Tokenizer.token_byte_lengths), so no text is decoded.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torchmetrics import Metric

LN2 = math.log(2)


def nats_and_bytes(
    token_losses: torch.Tensor, targets: torch.Tensor, token_bytes: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The summed loss of the targets that stand for text, and their bytes.

    token_losses (N,) in nats and targets (N,); token_bytes (V,) from token_byte_lengths().
    """
    target_bytes = token_bytes[targets]  # (N,)
    nats = torch.where(target_bytes > 0, token_losses.float(), 0.0).sum()
    return nats, target_bytes.sum()


class BitsPerByte(Metric):
    """Σ nats / (ln 2 · Σ bytes) over every batch given to update(), on every device."""

    full_state_update = False

    def __init__(self, token_byte_lengths: np.ndarray) -> None:
        super().__init__()
        table = torch.as_tensor(token_byte_lengths, dtype=torch.int64)
        self.register_buffer("token_bytes", table, persistent=False)  # (V,)
        self.add_state("nats", torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("bytes", torch.tensor(0), dist_reduce_fx="sum")  # integers: exact

    def update(self, token_losses: torch.Tensor, targets: torch.Tensor) -> None:
        nats, n_bytes = nats_and_bytes(token_losses, targets, self.token_bytes)
        self.nats += nats
        self.bytes += n_bytes

    def compute(self) -> torch.Tensor:
        return self.nats / (LN2 * self.bytes)
