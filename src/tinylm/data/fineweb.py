"""FineWeb (Penedo et al., 2024): `data=fineweb`, streamed shard by shard under a disk budget.

The dataset is read as one stream of documents: its parquet shards in sorted order, rows in
order. Shards are fetched on demand through fsspec — `hf://` for the 🤗 Hub, or a local folder
laid out like the repository — into a `ShardCache` that never exceeds `data.cache_max_gb`.

The stream is tokenized one epoch at a time: epoch e is the next `data.tokens_per_epoch`
training tokens after epoch e - 1 ended, a tokenized cache of its own (built with the same
`load_or_build` as every dataset) whose meta.json records where in the stream it ended. Epoch 0
also holds the validation split. A document belongs to the validation split when a hash of its
`id` falls below `data.val_fraction`, so no document is ever in both splits, on any machine.
When the stream runs out, epochs start over from the beginning.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pyarrow.parquet as pq

from tinylm.data.datamodule import TokenDataModule
from tinylm.data.hub import (
    check_dataset_path,
    hub_errors_explained,
    is_local,
    version_fingerprint,
)
from tinylm.data.shard_cache import ShardCache
from tinylm.data.token_cache import (
    TokenizationStats,
    TokenizedCache,
    TokenWriter,
    load_or_build,
    token_dtype,
    tokenize_stream,
)
from tinylm.data.windows import EpochWindows
from tinylm.errors import DataError
from tinylm.tokenizers import Tokenizer, build_tokenizer

log = logging.getLogger(__name__)

Position = tuple[int, int]  # (shard index, row index): where a document sits in the stream


def is_validation(doc_id: str, val_fraction: float) -> bool:
    digest = hashlib.blake2b(doc_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < val_fraction


def subset_folder(subset: str) -> str:
    """`sample-10BT` -> `sample/10BT`; a crawl such as `CC-MAIN-2024-10` -> `data/CC-MAIN-2024-10`;
    anything with a slash is a folder of the repository already."""
    if "/" in subset:
        return subset
    if subset.startswith("sample-"):
        return "sample/" + subset.removeprefix("sample-")
    return "data/" + subset


class FineWebDataModule(TokenDataModule):
    name = "fineweb"

    def __init__(
        self,
        path: str = "HuggingFaceFW/fineweb",
        subset: str = "sample-10BT",
        revision: str = "main",
        val_fraction: float = 0.01,
        tokens_per_epoch: int = 100_000_000,
        cache_max_gb: float = 20.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_dataset_path(path, "fineweb")
        if self.tokenizer_spec.get("kind") == "char":
            raise DataError(
                "tokenizer=char cannot be used with data=fineweb: web text has an open set of "
                "characters, and a later shard would hold ones the vocabulary never saw; use "
                "tokenizer=gpt2 or tokenizer=bpe."
            )
        if tokens_per_epoch < self.block_size + 1:
            raise DataError("data.tokens_per_epoch must hold at least one window of tokens.")
        self.path = path
        self.subset = subset
        self.revision = revision
        self.val_fraction = val_fraction
        self.tokens_per_epoch = tokens_per_epoch
        self.shard_cache = ShardCache(
            Path(self.cache_dir).expanduser() / "shards" / self.shard_cache_name(),
            max_bytes=int(cache_max_gb * 1e9),
        )
        self._shards: list[str] | None = None
        self._epochs: dict[int, TokenizedCache] = {}
        self._epochs_lock = threading.Lock()

    # -- the stream ----------------------------------------------------------------------------

    def filesystem(self) -> tuple[fsspec.AbstractFileSystem, str]:
        if is_local(self.path):
            return fsspec.core.url_to_fs(str(Path(self.path).expanduser().resolve()))
        return fsspec.core.url_to_fs(f"hf://datasets/{self.path}@{self.revision}")

    def shards(self) -> list[str]:
        if self._shards is None:
            with hub_errors_explained(self.path):
                fs, root = self.filesystem()
                self._shards = sorted(fs.glob(f"{root}/{subset_folder(self.subset)}/*.parquet"))
            if not self._shards:
                raise DataError(
                    f"{self.path} has no parquet files under {subset_folder(self.subset)}/; "
                    "check data.subset."
                )
        return self._shards

    def shard_cache_name(self) -> str:
        if is_local(self.path):
            digest = hashlib.sha256(str(Path(self.path).resolve()).encode()).hexdigest()[:12]
            return f"local-{digest}"
        return f"{self.path.replace('/', '--')}@{self.revision}"

    def documents(self, start: Position) -> Iterator[tuple[str, str, Position]]:
        """(id, text, position) of every document from `start` to the end of the stream."""
        fs, _ = self.filesystem()
        shards = self.shards()
        for shard_index in range(start[0], len(shards)):
            with hub_errors_explained(self.path):
                parquet = self.shard_cache.open(
                    fs, shards[shard_index], f"{shard_index:05d}.parquet"
                )
            first_row = start[1] if shard_index == start[0] else 0
            for row, doc_id, text in rows_from(parquet, first_row):
                yield doc_id, text, (shard_index, row)

    # -- epochs --------------------------------------------------------------------------------

    def split_length_advice(self, split: str) -> list[str]:
        return ["raise data.val_fraction" if split == "val" else "raise data.tokens_per_epoch"]

    def source_fingerprint(self) -> dict:
        return {
            "kind": "fineweb",
            "path": self.path,
            "subset": self.subset,
            "val_fraction": self.val_fraction,
            "tokens_per_epoch": self.tokens_per_epoch,
            **version_fingerprint(
                self.path, self.revision, f"{subset_folder(self.subset)}/*.parquet"
            ),
        }

    def build(self, folder: Path) -> tuple[Tokenizer, dict]:
        """Epoch 0, with the validation split and, for a trained tokenizer, its training."""
        tokenizer = build_tokenizer(self.tokenizer_spec, self.training_text)
        return tokenizer, self.write_epoch(folder, 0, (0, 0), tokenizer)

    def training_text(self) -> Iterator[str]:
        for doc_id, text, _ in self.documents((0, 0)):
            if not is_validation(doc_id, self.val_fraction):
                yield text

    def epoch_cache(self, epoch: int) -> TokenizedCache:
        """The tokenized cache of `epoch`, built (and every epoch before it) when missing."""
        with self._epochs_lock:
            if epoch in self._epochs:
                return self._epochs[epoch]
        if epoch == 0:
            return self.cache
        # Every epoch is tokenized with epoch 0's tokenizer: a BPE is trained only once.
        tokenizer = self.cache.tokenizer
        cache = self.cache
        for k in range(1, epoch + 1):
            end = cache.meta["end"]
            if end is None:  # the stream ran out during epoch k - 1: start over
                return self.epoch_cache(epoch % k)
            cache = load_or_build(
                self.cache_dir,
                f"{self.name}-epoch{k}",
                {**self.fingerprint(), "epoch": k},
                lambda folder, k=k, start=tuple(end): (
                    tokenizer,
                    self.write_epoch(folder, k, start, tokenizer),
                ),
            )
            if cache.meta["splits"]["train"]["tokens"] < self.block_size + 1:
                return self.epoch_cache(epoch % k)  # too little was left for one window
        with self._epochs_lock:
            self._epochs[epoch] = cache
        return cache

    def write_epoch(self, folder: Path, epoch: int, start: Position, tokenizer: Tokenizer) -> dict:
        """Tokenize the stream from `start` until this epoch holds tokens_per_epoch training
        tokens (the validation documents met on the way go to val.bin in epoch 0 only)."""
        dtype = token_dtype(tokenizer.vocab_size)
        stats = TokenizationStats()
        end: Position | None = None
        with (
            TokenWriter(folder / "train.bin", dtype) as train,
            TokenWriter(folder / "val.bin", dtype) as val,
        ):
            pieces = self.tagged_documents(start, keep_validation=epoch == 0)
            description = f"Tokenizing {self.path} epoch {epoch}"
            for ids, (validation, (shard, row)) in tokenize_stream(
                pieces, tokenizer, stats, description
            ):
                (val if validation else train).write(ids)
                if train.tokens >= self.tokens_per_epoch:
                    end = (shard, row + 1)
                    break
        log.info("%s: %s", description, stats.summary())
        if epoch > 0:
            (folder / "val.bin").unlink()
        splits = {"train": {"tokens": train.tokens}}
        if epoch == 0:
            splits["val"] = {"tokens": val.tokens}
        return {"splits": splits, "documents": stats.documents, "start": start, "end": end}

    def tagged_documents(
        self, start: Position, keep_validation: bool
    ) -> Iterator[tuple[str, bool, tuple[bool, Position]]]:
        for doc_id, text, position in self.documents(start):
            validation = is_validation(doc_id, self.val_fraction)
            if keep_validation or not validation:
                yield text, True, (validation, position)

    # -- serving -------------------------------------------------------------------------------

    def prepare_ahead(self, epochs: int) -> None:
        for epoch in range(epochs):
            self.epoch_cache(epoch)

    def epoch_tokens(self, epoch: int) -> np.ndarray:
        return self.epoch_cache(epoch).tokens("train")

    def training_windows(self, **placement: Any) -> EpochWindows:
        accumulate, world_size = placement["accumulate"], placement["world_size"]
        tokens_per_step = self.batch_size * self.block_size * accumulate * world_size
        return EpochWindows(
            self.epoch_tokens,
            steps_per_epoch=max(1, self.tokens_per_epoch // tokens_per_step),
            **placement,
        )


def rows_from(parquet: pq.ParquetFile, first_row: int) -> Iterator[tuple[int, str, str]]:
    """(row, id, text) from row `first_row` on, skipping whole row groups before it."""
    metadata = parquet.metadata
    group_start = 0
    for group in range(metadata.num_row_groups):
        group_rows = metadata.row_group(group).num_rows
        if group_start + group_rows > first_row:
            table = parquet.read_row_group(group, columns=["id", "text"])
            ids, texts = table.column("id").to_pylist(), table.column("text").to_pylist()
            for offset in range(max(0, first_row - group_start), group_rows):
                yield group_start + offset, ids[offset], texts[offset]
        group_start += group_rows
