"""Printing text token by token while it is generated."""

from __future__ import annotations

import sys
from typing import TextIO

from tinylm.tokenizers import Tokenizer

INCOMPLETE = "\ufffd"  # what decoding the first bytes of a multi-byte character gives


class TextStream:
    """Writes each token's text as soon as it is whole.

    Byte-level BPE can split one character (an emoji, an accented letter) over several
    tokens, whose separate decodings are replacement characters; text is held back while it
    ends in one, and written once the rest of the character has arrived.
    """

    def __init__(self, tokenizer: Tokenizer, out: TextIO | None = None) -> None:
        self.tokenizer = tokenizer
        self.out = out or sys.stdout  # looked up now: tests and notebooks replace sys.stdout
        self.pending: list[int] = []

    def write(self, token: int) -> None:
        text = self.push(token)
        if text:
            self._emit(text)

    def push(self, token: int) -> str:
        """Add `token`; return the text that is now whole ("" while a character is incomplete)."""
        self.pending.append(token)
        text = self.tokenizer.decode(self.pending)
        if text.endswith(INCOMPLETE):
            return ""
        self.pending = []
        return text

    def close(self) -> None:
        """Write whatever is still held back, and end the line."""
        self._emit(self.tokenizer.decode(self.pending) + "\n")
        self.pending = []

    def _emit(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()
