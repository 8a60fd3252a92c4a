"""A model's loss, perplexity, token accuracy and bits per byte on a split of a dataset.

The numbers are training's `val/loss`, `val/ppl`, `val/acc` and `val/bpb` for the same split:
the same non-overlapping windows from the start of the split, in the same batches, the same
number of them, and the loss weighted by tokens across batches.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from tinylm.bits_per_byte import LN2, nats_and_bytes
from tinylm.data import TokenDataModule
from tinylm.data.windows import SequentialWindows
from tinylm.model import GPT

SPLITS = ("train", "val")


@torch.inference_mode()
def evaluate_model(
    model: GPT,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    limit_batches: int | None,
    device: torch.device,
    token_byte_lengths: np.ndarray,
) -> dict:
    """Mean next-token cross-entropy (nats per token), its exp, the fraction of tokens that
    are the model's most likely guess, and bits per byte (tinylm.bits_per_byte), over the first
    `limit_batches` batches (None: all). `token_byte_lengths` is the tokenizer's."""
    token_bytes = torch.as_tensor(token_byte_lengths, device=device)  # (V,)
    loss_sum, text_nats, text_bytes, correct, tokens, batches_seen = 0.0, 0.0, 0, 0, 0, 0
    for x, y in itertools.islice(batches, limit_batches):
        x, y = x.to(device), y.to(device)  # (B, T) each
        logits = model(x)  # (B, T, V)
        token_losses = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none")
        loss_sum += token_losses.sum().item()
        nats, n_bytes = nats_and_bytes(token_losses, y.flatten(), token_bytes)
        text_nats, text_bytes = text_nats + nats.item(), text_bytes + n_bytes.item()
        correct += (logits.argmax(dim=-1) == y).sum().item()
        tokens += y.numel()
        batches_seen += 1
    loss = loss_sum / tokens
    return {
        "loss": loss,
        "perplexity": math.exp(loss),
        "accuracy": correct / tokens,
        "bpb": text_nats / (LN2 * text_bytes),
        "tokens": tokens,
        "bytes": text_bytes,
        "batches": batches_seen,
    }


def split_batches(datamodule: TokenDataModule, split: str) -> DataLoader:
    """The validation split's batches exactly as training validates on them; the training
    split cut into windows and batches the same way."""
    if split == "val":
        return datamodule.val_dataloader()
    windows = SequentialWindows(datamodule.cache.tokens(split), datamodule.block_size)
    return DataLoader(windows, batch_size=datamodule.batch_size)
