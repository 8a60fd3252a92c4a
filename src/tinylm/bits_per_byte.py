"""Bits per byte: a loss in a unit that every tokenizer shares.

A loss in nats per token depends on how much text a token holds, so a char model's loss and a
BPE model's cannot be compared. Dividing the loss summed over the targets by ln 2 × the UTF-8
bytes those targets stand for gives bits per byte, which can. Special tokens (end of text) stand
for no bytes, and their losses are left out of the sum (nanochat's rule). The bytes come from
a per-token table (Tokenizer.token_byte_lengths), so no text is decoded. Validation and
eval.py sum them in tinylm.evaluation.Evaluation.
"""

from __future__ import annotations

import math

import torch

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
