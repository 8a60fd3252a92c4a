"""The one interface every tokenizer backend implements.

A tokenizer turns text into integer ids and back, names its end-of-text id, and describes
itself as a small JSON-able dict (its state) so that a checkpoint can carry it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence

import numpy as np

EOS_TEXT = "<|endoftext|>"


class Tokenizer(ABC):
    kind: str  # the `kind` of its config spec and of its state_dict(), which picks the backend

    @classmethod
    @abstractmethod
    def from_spec(
        cls,
        spec: dict,
        training_text: Callable[[], Iterable[str]],
        validation_text: Callable[[], Iterable[str]],
    ) -> Tokenizer:
        """The tokenizer a `conf/tokenizer/*.yaml` describes. The text callables are called only
        by backends that learn from the data, so a fixed encoding never reads the corpus."""

    @classmethod
    @abstractmethod
    def from_state(cls, state: dict) -> Tokenizer:
        """Rebuild the tokenizer that state_dict() describes."""

    @property
    @abstractmethod
    def vocab_size(self) -> int: ...

    @property
    @abstractmethod
    def eos_id(self) -> int: ...

    @abstractmethod
    def encode(self, text: str) -> list[int]:
        """Text -> ids. Special-token text such as "<|endoftext|>" is encoded as plain text."""

    @abstractmethod
    def decode(self, ids: Sequence[int]) -> str: ...

    def encode_batch(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Many texts at once, each as an array of ids: the bulk path of the cache writer.
        Backends override it to encode on every core."""
        return [np.asarray(self.encode(text), dtype=np.int64) for text in texts]

    @abstractmethod
    def token_byte_lengths(self) -> np.ndarray:
        """(vocab_size,) int64: the UTF-8 bytes each token stands for, 0 for special tokens.

        Summed over a sequence, these are the bytes of its text, which makes losses of different
        tokenizers comparable as bits per byte (tinylm.bits_per_byte) without decoding text."""

    @abstractmethod
    def state_dict(self) -> dict:
        """Everything needed to rebuild this tokenizer, as plain JSON-able values."""

    def describe(self) -> str:
        return f"{self.kind} (vocab {self.vocab_size:,})"
