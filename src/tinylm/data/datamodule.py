"""The LightningDataModule every data source shares: tokenized once into the cache, served as
windows."""

from __future__ import annotations

import hashlib
import json
import logging
from abc import abstractmethod
from pathlib import Path
from typing import Any

import lightning as L
from torch.utils.data import DataLoader

from tinylm.data.token_cache import TokenizedCache, load_or_build, open_complete
from tinylm.data.windows import RandomWindows, SequentialWindows
from tinylm.errors import DataError
from tinylm.tokenizers import SAVED, Tokenizer

log = logging.getLogger(__name__)


class TokenDataModule(L.LightningDataModule):
    """What every data source shares: the cache, random training windows, fixed validation ones.

    A source says what identifies its text (`source_fingerprint`) and how to write its splits
    into a cache folder (`build`). Training batches come from `RandomWindows`; the number of
    training batches consumed so far is saved in checkpoints (`state_dict`), so a resumed run
    continues with the batch an uninterrupted run would have trained on next.

    `batch_size` is the micro-batch of one process; `global_batch_size` (optional) is the batch
    of one optimizer step over all processes, from which train() derives the accumulation.
    """

    name = "data"

    def __init__(
        self,
        tokenizer: dict,
        block_size: int,
        batch_size: int,
        cache_dir: str,
        seed: int = 1337,
        global_batch_size: int | None = None,
    ) -> None:
        super().__init__()
        self.tokenizer_spec = dict(tokenizer)
        self.block_size = block_size
        self.batch_size = batch_size
        self.global_batch_size = global_batch_size
        self.cache_dir = cache_dir
        self.seed = seed
        self.cache: TokenizedCache | None = None
        self.train_batches_consumed = 0

    @abstractmethod
    def source_fingerprint(self) -> dict:
        """Everything that identifies the text and how it is split."""

    @abstractmethod
    def build(self, folder: Path) -> tuple[Tokenizer, dict]:
        """Write `train.bin` and `val.bin` into `folder`; return the tokenizer and the counts."""

    def fingerprint(self, tokenizer_spec: dict | None = None) -> dict:
        """What identifies this source's cache, tokenized as `tokenizer_spec` (default: ours)."""
        return {
            "source": self.source_fingerprint(),
            "tokenizer": tokenizer_fingerprint(tokenizer_spec or self.tokenizer_spec),
        }

    def prepare_data(self) -> None:
        # Lightning calls this on one process per machine; load_or_build is also safe to call
        # from many processes at once (a file lock serialises the building).
        load_or_build(self.cache_dir, self.name, self.fingerprint(), self.build)

    def setup(self, stage: str | None = None) -> None:
        # Builds the cache when prepare_data() did not (a process of its own, a script).
        if self.cache is None:
            self.cache = self.cache_of_the_saved_tokenizer() or load_or_build(
                self.cache_dir, self.name, self.fingerprint(), self.build
            )
            if stage in (None, "fit"):  # evaluation checks the one split it reads
                for split in ("train", "val"):
                    self.check_split_holds_a_window(split)

    def check_split_holds_a_window(self, split: str, context_is_fixed: bool = False) -> None:
        """A split shorter than one window (block_size + 1 tokens) is one sentence whose advice
        can help: a context a checkpoint fixes is not offered as a setting to lower."""
        tokens = len(self.cache.tokens(split))
        if tokens >= self.block_size + 1:
            return
        advice = ["give more text", *self.split_length_advice(split)]
        if not context_is_fixed:
            advice.append("lower model.block_size")
        raise DataError(
            f"The {split} split holds {tokens:,} tokens, fewer than one window of block_size + 1 "
            f"= {self.block_size + 1}; {', '.join(advice[:-1])} or {advice[-1]}."
        )

    def split_length_advice(self, split: str) -> list[str]:
        """Settings of this source that lengthen `split`, as advice (none by default)."""
        return []

    def cache_of_the_saved_tokenizer(self) -> TokenizedCache | None:
        """The cache that was written when a saved tokenizer was first made from this source.

        A checkpoint's tokenizer was learned from its training data (or is a fixed encoding),
        and that data was tokenized then, under the fingerprint of the spec it was made from
        (`learned_from`). When that cache exists and holds this very tokenizer, evaluating on the
        same source reads it rather than tokenizing everything a second time.
        """
        learned_from = self.tokenizer_spec.get("learned_from")
        if learned_from is None:
            return None
        cache = open_complete(self.cache_dir, self.name, self.fingerprint(learned_from))
        if cache is None or cache.tokenizer.state_dict() != self.tokenizer_spec["state"]:
            log.info(
                "No cache of this data with this tokenizer (the one written when it was made is "
                "gone, or the data differ): tokenizing the data with it."
            )
            return None
        # From here on this module reads (and, streaming, extends) the cache that spec names.
        self.tokenizer_spec = learned_from
        return cache

    def prepare_ahead(self, epochs: int) -> None:
        """Tokenize the first `epochs` epochs now. Only streamed sources (FineWeb) tokenize in
        epochs; the others hold all their tokens once set up."""

    @property
    def tokenizer(self) -> Tokenizer:
        if self.cache is None:
            raise RuntimeError("Call setup() before asking for the tokenizer.")
        return self.cache.tokenizer

    def train_dataloader(self) -> DataLoader:
        trainer = self.trainer
        windows = self.training_windows(
            block_size=self.block_size,
            batch_size=self.batch_size,
            seed=self.seed,
            start_index=self.train_batches_consumed,
            accumulate=trainer.accumulate_grad_batches if trainer else 1,
            rank=trainer.global_rank if trainer else 0,
            world_size=trainer.world_size if trainer else 1,
        )
        # The dataset yields whole batches (batch_size=None); slicing a memmap is cheaper than
        # handing it to worker processes.
        return DataLoader(windows, batch_size=None, pin_memory=self._on_gpu())

    def training_windows(self, **placement: Any) -> RandomWindows:
        """The endless training batches, placed by `placement` (block and batch size, seed,
        start index, accumulation, rank, world size): random windows of the training split.
        A streamed source serves them epoch by epoch instead."""
        return RandomWindows(self.cache.tokens("train"), **placement)

    def val_dataloader(self) -> DataLoader:
        dataset = SequentialWindows(self.cache.tokens("val"), self.block_size)
        return DataLoader(dataset, batch_size=self.batch_size, pin_memory=self._on_gpu())

    def _on_gpu(self) -> bool:
        return self.trainer is not None and self.trainer.strategy.root_device.type == "cuda"

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        # Called once for every batch the training loop actually consumes (not for prefetched
        # ones), which makes it the place to count the data position.
        if self.trainer is not None and self.trainer.training:
            self.train_batches_consumed += 1
        return batch

    def state_dict(self) -> dict:
        return {"train_batches_consumed": self.train_batches_consumed}

    def load_state_dict(self, state_dict: dict) -> None:
        self.train_batches_consumed = state_dict["train_batches_consumed"]

    def describe(self) -> str:
        meta = self.cache.meta
        splits = ", ".join(f"{s} {v['tokens']:,}" for s, v in meta["splits"].items())
        return f"{self.cache.folder} ({splits} tokens, {meta['dtype']})"


def tokenizer_fingerprint(spec: dict) -> dict:
    """The spec itself, except that a saved tokenizer's (possibly large) state is hashed."""
    if spec.get("kind") != SAVED:
        return spec
    canonical = json.dumps(spec["state"], sort_keys=True).encode()
    return {"kind": SAVED, "state_sha256": hashlib.sha256(canonical).hexdigest()}
