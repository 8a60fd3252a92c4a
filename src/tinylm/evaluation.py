"""A model's loss, perplexity and token accuracy on a split of a dataset.

The numbers are training's `val/loss`, `val/ppl` and `val/acc` for the same split: the same
non-overlapping windows from the start of the split, in the same batches, the same number of
them, and the loss weighted by tokens across batches.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

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
) -> dict:
    """Mean next-token cross-entropy (nats per token), its exp, and the fraction of tokens that
    are the model's most likely guess, over the first `limit_batches` batches (None: all)."""
    loss_sum, correct, tokens, batches_seen = 0.0, 0, 0, 0
    for x, y in itertools.islice(batches, limit_batches):
        x, y = x.to(device), y.to(device)  # (B, T) each
        logits = model(x)  # (B, T, V)
        loss_sum += F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="sum").item()
        correct += (logits.argmax(dim=-1) == y).sum().item()
        tokens += y.numel()
        batches_seen += 1
    loss = loss_sum / tokens
    return {
        "loss": loss,
        "perplexity": math.exp(loss),
        "accuracy": correct / tokens,
        "tokens": tokens,
        "batches": batches_seen,
    }


def split_batches(datamodule: TokenDataModule, split: str) -> DataLoader:
    """The validation split's batches exactly as training validates on them; the training
    split cut into windows and batches the same way."""
    if split == "val":
        return datamodule.val_dataloader()
    windows = SequentialWindows(datamodule.cache.tokens(split), datamodule.block_size)
    return DataLoader(windows, batch_size=datamodule.batch_size)
