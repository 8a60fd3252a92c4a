"""TinyStories (Eldan & Li, 2023): `data=tinystories`.

Loaded with `datasets.load_dataset` from `roneneldan/TinyStories` — or from a local folder laid out
like that repository — with its own train and validation splits:

- variant `v1`: the original stories, `data/{train,validation}-*.parquet`, column `text`;
- variant `v2`: the GPT-4-only stories, `TinyStoriesV2-GPT4-{train,valid}.txt`, where a line
  holding only `<|endoftext|>` ends each story.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tinylm.data.datamodule import TokenDataModule
from tinylm.data.hub import (
    check_dataset_path,
    hub_errors_explained,
    is_local,
    version_fingerprint,
)
from tinylm.data.text_files import documents_from_lines
from tinylm.data.token_cache import write_split
from tinylm.errors import DataError
from tinylm.tokenizers import Tokenizer, build_tokenizer

if TYPE_CHECKING:
    import datasets

VARIANT_FILES = {
    "v1": {"train": "data/train-*.parquet", "validation": "data/validation-*.parquet"},
    "v2": {"train": "TinyStoriesV2-GPT4-train.txt", "validation": "TinyStoriesV2-GPT4-valid.txt"},
}
SPLITS = {"train": "train", "val": "validation"}  # our split name -> the dataset's


class TinyStoriesDataModule(TokenDataModule):
    name = "tinystories"

    def __init__(
        self,
        path: str = "roneneldan/TinyStories",
        variant: str = "v1",
        revision: str = "main",
        max_train_docs: int | None = None,
        max_val_docs: int | None = None,
        hf_cache_dir: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_dataset_path(path, "tinystories")
        self.path = path
        self.variant = variant
        self.revision = revision
        self.max_docs = {"train": max_train_docs, "val": max_val_docs}
        self.hf_cache_dir = hf_cache_dir

    def split_length_advice(self, split: str) -> list[str]:
        return [f"raise data.max_{split}_docs"] if self.max_docs[split] is not None else []

    def source_fingerprint(self) -> dict:
        return {
            "kind": "tinystories",
            "path": self.path,
            "variant": self.variant,
            "max_docs": self.max_docs,
            **version_fingerprint(self.path, self.revision, "**/*"),
        }

    def build(self, folder: Path) -> tuple[Tokenizer, dict]:
        stories = {split: self.load_split(split) for split in SPLITS}
        tokenizer = build_tokenizer(
            self.tokenizer_spec,
            lambda: (text for text, _ in self.pieces(stories["train"])),
            lambda: (text for text, _ in self.pieces(stories["val"])),
        )
        counts = {"splits": {}, "documents": 0}
        for split in SPLITS:
            stats = write_split(
                folder / f"{split}.bin",
                self.pieces(stories[split]),
                tokenizer,
                f"Tokenizing TinyStories {self.variant} {split}",
            )
            counts["splits"][split] = {"tokens": stats.tokens, "documents": stats.documents}
            counts["documents"] += stats.documents
        return tokenizer, counts

    def load_split(self, split: str) -> datasets.Dataset:
        import datasets  # here, not at the top: a run whose cache exists never needs it (~1 s)

        # No num_proc: 🤗 datasets forks a process pool for it, and a fork taken from a process
        # whose torch threads are running can deadlock (it hung prepare_data in the tests).
        with hub_errors_explained(self.path):
            dataset = datasets.load_dataset(
                self.path,
                data_files=VARIANT_FILES[self.variant],
                split=SPLITS[split],
                revision=None if is_local(self.path) else self.revision,
                cache_dir=self.hf_cache_dir,
            )
        if "text" not in dataset.column_names:
            raise DataError(f"{self.path} has no 'text' column (columns: {dataset.column_names}).")
        if self.variant == "v1" and self.max_docs[split] is not None:
            dataset = dataset.select(range(min(self.max_docs[split], len(dataset))))
        return dataset

    def pieces(self, dataset: datasets.Dataset) -> Iterator[tuple[str, bool]]:
        """The stories of a split as (text, ends_document) pieces, at most max_docs of them."""
        texts = (text for batch in dataset.iter(batch_size=1024) for text in batch["text"])
        if self.variant == "v1":
            yield from ((text, True) for text in texts)
            return
        # 🤗 datasets' text loader gives the file's lines without their line ends.
        limit = self.max_docs["train" if dataset.split == SPLITS["train"] else "val"]
        yield from documents_from_lines((line + "\n" for line in texts), limit)
