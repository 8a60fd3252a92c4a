"""A model's loss, perplexity, token accuracy and bits per byte: one way to compute them, which
training's validation (`val/loss`, `val/ppl`, `val/acc`, `val/bpb`) and `scripts/eval.py` both
call, so that the two cannot drift apart (nanochat's `loss_eval` serves its training and its
eval script the same way).

`next_token_loss` is the one place tinylm calls cross-entropy: training's loss is its mean,
and `Evaluation` sums its per-target values over batches, with the targets, the correct guesses
and the bytes of text they stand for. On several devices the sums are added across them before
the numbers are formed (a torchmetrics Metric), so the loss is weighted by tokens across
batches and devices alike.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from torchmetrics import Metric

from tinylm.bits_per_byte import LN2, nats_and_bytes
from tinylm.data import TokenDataModule
from tinylm.data.windows import SequentialWindows
from tinylm.model import GPT

SPLITS = ("train", "val")


def next_token_loss(
    logits: torch.Tensor, targets: torch.Tensor, reduction: str = "mean"
) -> torch.Tensor:
    """Cross-entropy of each next token: logits (B, T, V), targets (B, T); the mean, or one loss
    per target, (B·T,), with reduction="none"."""
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction=reduction)


class Evaluation(Metric):
    """Sums over every batch given to update(), on every device: the targets' loss in nats, the
    targets, those that are the model's most likely guess, and for bits per byte the loss and
    the UTF-8 bytes of the targets that stand for text (tinylm.bits_per_byte)."""

    full_state_update = False

    def __init__(self, token_byte_lengths: np.ndarray) -> None:
        super().__init__()
        table = torch.as_tensor(token_byte_lengths, dtype=torch.int64)
        self.register_buffer("token_bytes", table, persistent=False)  # (V,)
        self.add_state("loss_sum", torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("text_nats", torch.tensor(0.0), dist_reduce_fx="sum")
        # Counts as integers: exact however many batches.
        for name in ("tokens", "correct", "text_bytes"):
            self.add_state(name, torch.tensor(0), dist_reduce_fx="sum")

    def update(self, logits: torch.Tensor, targets: torch.Tensor) -> None:
        """logits (B, T, V), targets (B, T)."""
        token_losses = next_token_loss(logits, targets, reduction="none")  # (B·T,)
        nats, n_bytes = nats_and_bytes(token_losses, targets.flatten(), self.token_bytes)
        self.loss_sum += token_losses.float().sum()
        self.text_nats += nats
        self.text_bytes += n_bytes
        self.tokens += targets.numel()
        self.correct += (logits.argmax(dim=-1) == targets).sum()

    def compute(self) -> dict[str, torch.Tensor]:
        loss = self.loss_sum / self.tokens
        return {
            "loss": loss,
            "perplexity": torch.exp(loss),
            "accuracy": self.correct / self.tokens,
            "bpb": self.text_nats / (LN2 * self.text_bytes),
        }


@torch.inference_mode()
def evaluate_model(
    model: GPT,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    limit_batches: int | None,
    device: torch.device,
    token_byte_lengths: np.ndarray,
) -> dict:
    """The model's Evaluation over the first `limit_batches` batches (None: all), as plain
    numbers, with the tokens, bytes and batches it covered. `token_byte_lengths` is the
    tokenizer's."""
    evaluation = Evaluation(token_byte_lengths).to(device)
    batches_seen = 0
    for x, y in itertools.islice(batches, limit_batches):
        x, y = x.to(device), y.to(device)  # (B, T) each
        evaluation.update(model(x), y)
        batches_seen += 1
    numbers = {name: value.item() for name, value in evaluation.compute().items()}
    return {
        **numbers,
        "tokens": int(evaluation.tokens),
        "bytes": int(evaluation.text_bytes),
        "batches": batches_seen,
    }


def split_batches(datamodule: TokenDataModule, split: str) -> DataLoader:
    """The validation split's batches exactly as training validates on them; the training
    split cut into windows and batches the same way."""
    if split == "val":
        return datamodule.val_dataloader()
    windows = SequentialWindows(datamodule.cache.tokens(split), datamodule.block_size)
    return DataLoader(windows, batch_size=datamodule.batch_size)
