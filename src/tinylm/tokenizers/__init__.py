"""One tokenizer interface, several backends, chosen by `tokenizer.kind`."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from tinylm.errors import TokenizerError
from tinylm.tokenizers.base import EOS_TEXT, Tokenizer
from tinylm.tokenizers.char import CharTokenizer
from tinylm.tokenizers.tiktoken_tokenizer import TiktokenTokenizer

SAVED = "saved"  # the kind of a spec that carries a finished tokenizer's state


def saved_tokenizer_spec(tokenizer: Tokenizer) -> dict:
    """A spec that rebuilds exactly `tokenizer` rather than learning a new one from the data:
    how evaluation tokenizes any dataset with the tokenizer a checkpoint was trained with."""
    return {"kind": SAVED, "state": tokenizer.state_dict()}


def build_tokenizer(spec: dict, training_text: Callable[[], Iterable[str]]) -> Tokenizer:
    """Make the tokenizer a `conf/tokenizer/*.yaml` (or `saved_tokenizer_spec`) describes.

    `training_text` is called only by backends that learn from the data, so a fixed encoding
    never reads the corpus twice.
    """
    kind = spec.get("kind")
    if kind == SAVED:
        return tokenizer_from_state(spec["state"])
    if kind == "tiktoken":
        return TiktokenTokenizer(spec.get("encoding", "gpt2"))
    if kind == "char":
        return CharTokenizer.train(training_text())
    raise TokenizerError(f"Unknown tokenizer kind {kind!r}; use one of: tiktoken, char.")


def tokenizer_from_state(state: dict) -> Tokenizer:
    """Rebuild a tokenizer from its state_dict() — what a checkpoint and a cache carry."""
    kind = state.get("kind")
    if kind == "tiktoken":
        return TiktokenTokenizer(state["encoding"])
    if kind == "char":
        return CharTokenizer(state["chars"])
    raise TokenizerError(f"Cannot restore a tokenizer of unknown kind {kind!r}.")


__all__ = [
    "EOS_TEXT",
    "SAVED",
    "Tokenizer",
    "TokenizerError",
    "build_tokenizer",
    "saved_tokenizer_spec",
    "tokenizer_from_state",
]
