"""Token windows for training and validation.

A window is block_size + 1 consecutive tokens: the model reads the first block_size and is
scored on predicting each next one (x = window[:-1], y = window[1:]).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset

log = logging.getLogger(__name__)

Batch = tuple[torch.Tensor, torch.Tensor]  # x, y: (B, T) int64 each


def windows_to_batch(windows: np.ndarray) -> Batch:
    tensor = torch.from_numpy(windows.astype(np.int64))  # (B, T + 1)
    return tensor[:, :-1], tensor[:, 1:]


class RandomWindows(IterableDataset):
    """Endless training batches of windows at random offsets.

    The batch a rank trains on is a pure function of (seed, micro-batch index, rank): each
    optimizer step draws one global batch of offsets from a generator seeded with (seed, step),
    and each (micro-batch, rank) takes its own slice of it. So a resumed run that starts at
    `start_index` sees exactly the batches an uninterrupted run would have seen, and the global
    batch of a step is the same however it is split over devices and accumulation.
    """

    def __init__(
        self,
        tokens: np.ndarray,
        block_size: int,
        batch_size: int,
        seed: int,
        start_index: int = 0,
        accumulate: int = 1,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.tokens = tokens
        self.block_size = block_size
        self.batch_size = batch_size
        self.seed = seed
        self.start_index = start_index
        self.accumulate = accumulate
        self.rank = rank
        self.world_size = world_size

    def tokens_for_step(self, step: int) -> np.ndarray:
        return self.tokens

    def batch(self, index: int) -> Batch:
        step, micro = divmod(index, self.accumulate)
        tokens = self.tokens_for_step(step)
        global_batch = self.batch_size * self.accumulate * self.world_size
        rng = np.random.default_rng([self.seed, step])
        starts = rng.integers(0, len(tokens) - self.block_size, size=global_batch)
        first = (micro * self.world_size + self.rank) * self.batch_size
        mine = starts[first : first + self.batch_size]
        return windows_to_batch(np.stack([tokens[s : s + self.block_size + 1] for s in mine]))

    def __iter__(self) -> Iterator[Batch]:
        index = self.start_index
        while True:
            yield self.batch(index)
            index += 1


class EpochWindows(RandomWindows):
    """Random windows from a stream that is too big to tokenize at once, one epoch at a time.

    `epoch_tokens(e)` gives the tokens of epoch e (preparing them if needed). A step belongs to
    epoch `step // steps_per_epoch`, so the batch is still a pure function of (seed, step, rank),
    and the position in the stream is the step a checkpoint resumes from. While a step of epoch e
    is served, epoch e + 1 is prepared in a background thread, so training does not wait for it.
    """

    def __init__(
        self,
        epoch_tokens: Callable[[int], np.ndarray],
        steps_per_epoch: int,
        **kwargs,
    ) -> None:
        super().__init__(tokens=np.empty(0, dtype=np.uint16), **kwargs)
        self.epoch_tokens = epoch_tokens
        self.steps_per_epoch = steps_per_epoch
        self.prefetching: dict[int, threading.Thread] = {}

    def tokens_for_step(self, step: int) -> np.ndarray:
        epoch = step // self.steps_per_epoch
        self.prefetch(epoch + 1)
        return self.epoch_tokens(epoch)

    def prefetch(self, epoch: int) -> None:
        if epoch not in self.prefetching:
            thread = threading.Thread(
                target=self.prepare_quietly, args=(epoch,), name=f"epoch-{epoch}", daemon=True
            )
            self.prefetching[epoch] = thread
            thread.start()

    def prepare_quietly(self, epoch: int) -> None:
        try:
            self.epoch_tokens(epoch)
        except Exception as error:  # raised again, in the foreground, when the epoch is needed
            log.warning("Preparing epoch %d ahead of time failed: %s", epoch, error)


class SequentialWindows(Dataset):
    """Non-overlapping windows from the start of a split: the same ones at every evaluation."""

    def __init__(self, tokens: np.ndarray, block_size: int) -> None:
        self.tokens = tokens
        self.block_size = block_size

    def __len__(self) -> int:
        return max(0, (len(self.tokens) - 1) // self.block_size)

    def __getitem__(self, i: int) -> Batch:
        start = i * self.block_size
        window = torch.from_numpy(self.tokens[start : start + self.block_size + 1].astype(np.int64))
        return window[:-1], window[1:]
