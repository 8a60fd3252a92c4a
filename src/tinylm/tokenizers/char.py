"""Character-level tokenizer: one id per character seen in the training text, plus EOS.

Unknown-character policy: encoding text with a character the vocabulary never saw raises a
TokenizerError naming those characters. Silently mapping them to a placeholder would let a model
train or sample on text it cannot represent without anyone noticing.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from tinylm.errors import TokenizerError
from tinylm.tokenizers.base import EOS_TEXT, Tokenizer


class CharTokenizer(Tokenizer):
    kind = "char"

    def __init__(self, chars: Iterable[str]) -> None:
        self.chars = sorted(set(chars))
        if any(len(c) != 1 for c in self.chars):
            raise TokenizerError("A character vocabulary holds single characters only.")
        # id 0 is EOS; characters follow in sorted order so that ids do not depend on text order.
        self.char_to_id = {c: i + 1 for i, c in enumerate(self.chars)}

    @classmethod
    def from_spec(
        cls,
        spec: dict,
        training_text: Callable[[], Iterable[str]],
        validation_text: Callable[[], Iterable[str]],
    ) -> CharTokenizer:
        """Every character of both splits, so that validation text never holds a character the
        model cannot represent (which characters exist is not a statistic worth hiding from the
        model, unlike BPE's merge frequencies)."""
        seen: set[str] = set()
        for text in itertools.chain(training_text(), validation_text()):
            seen.update(text)
        if not seen:
            raise TokenizerError("Cannot build a character vocabulary from empty text.")
        return cls(seen)

    @classmethod
    def from_state(cls, state: dict) -> CharTokenizer:
        return cls(state["chars"])

    @property
    def vocab_size(self) -> int:
        return len(self.chars) + 1

    @property
    def eos_id(self) -> int:
        return 0

    def encode(self, text: str) -> list[int]:
        try:
            return [self.char_to_id[c] for c in text]
        except KeyError:
            unknown = sorted(set(text) - self.char_to_id.keys())
            raise TokenizerError(
                f"The character tokenizer never saw {', '.join(map(repr, unknown[:10]))}"
                f"{' …' if len(unknown) > 10 else ''} in its training text; remove "
                f"{'it' if len(unknown) == 1 else 'them'} or use a tokenizer trained on this text."
            ) from None

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(EOS_TEXT if i == 0 else self.chars[i - 1] for i in ids)

    def token_byte_lengths(self) -> np.ndarray:
        return np.array([0] + [len(c.encode("utf-8")) for c in self.chars], dtype=np.int64)

    def state_dict(self) -> dict:
        return {"kind": self.kind, "chars": "".join(self.chars)}
