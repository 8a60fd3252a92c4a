"""Local text files as a data source: `data=text data.path=...`."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from tinylm.data.datamodule import TokenDataModule
from tinylm.data.text_files import files_fingerprint, iter_pieces, resolve_text_files
from tinylm.data.token_cache import token_dtype, write_split
from tinylm.tokenizers import Tokenizer, build_tokenizer


class TextDataModule(TokenDataModule):
    """Local `.txt` / `.jsonl` files (`data=text data.path=...`).

    The split is positional, as in nanoGPT: the last `val_fraction` of the token stream is the
    validation split, the rest is training. Files are read in sorted path order, so the split is
    the same on every machine.
    """

    name = "text"

    def __init__(self, path: str, val_fraction: float = 0.1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.files = resolve_text_files(path)
        self.val_fraction = val_fraction

    def source_fingerprint(self) -> dict:
        return {
            "kind": "text",
            "files": files_fingerprint(self.files),
            "val_fraction": self.val_fraction,
        }

    def split_length_advice(self, split: str) -> list[str]:
        return ["raise data.val_fraction" if split == "val" else "lower data.val_fraction"]

    def build(self, folder: Path) -> tuple[Tokenizer, dict]:
        tokenizer = build_tokenizer(
            self.tokenizer_spec, lambda: (text for text, _ in iter_pieces(self.files))
        )
        stats = write_split(
            folder / "train.bin", iter_pieces(self.files), tokenizer, "Tokenizing text"
        )
        n_val = math.ceil(stats.tokens * self.val_fraction)
        itemsize = token_dtype(tokenizer.vocab_size).itemsize
        move_tail(folder / "train.bin", folder / "val.bin", n_val * itemsize)
        return tokenizer, {
            "documents": stats.documents,
            "splits": {"train": {"tokens": stats.tokens - n_val}, "val": {"tokens": n_val}},
        }


def move_tail(source: Path, target: Path, n_bytes: int) -> None:
    """Move the last n_bytes of `source` into a new file `target` without reading the rest."""
    size = source.stat().st_size
    with open(source, "r+b") as src, open(target, "wb") as dst:
        src.seek(size - n_bytes)
        while chunk := src.read(16 << 20):
            dst.write(chunk)
        src.truncate(size - n_bytes)
