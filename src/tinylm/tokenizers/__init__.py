"""One tokenizer interface, several backends, chosen by `tokenizer.kind`."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable

from tinylm.errors import TokenizerError
from tinylm.tokenizers.base import EOS_TEXT, Tokenizer
from tinylm.tokenizers.bpe import BPETokenizer
from tinylm.tokenizers.char import CharTokenizer
from tinylm.tokenizers.tiktoken_tokenizer import TiktokenTokenizer

SAVED = "saved"  # the kind of a spec that carries a finished tokenizer's state


def saved_tokenizer_spec(tokenizer: Tokenizer) -> dict:
    """A spec that rebuilds exactly `tokenizer` rather than learning a new one from the data:
    how evaluation tokenizes any dataset with the tokenizer a checkpoint was trained with."""
    return {"kind": SAVED, "state": tokenizer.state_dict()}


def build_tokenizer(
    spec: dict,
    training_text: Callable[[], Iterable[str]],
    validation_text: Callable[[], Iterable[str]] = tuple,
) -> Tokenizer:
    """Make the tokenizer a `conf/tokenizer/*.yaml` (or `saved_tokenizer_spec`) describes.

    The text callables are called only by backends that learn from the data, so a fixed
    encoding never reads the corpus. BPE learns its merges from the training text alone; the
    character vocabulary is every character of both splits, so that validation text never
    holds a character the model cannot represent (which characters exist is not a statistic
    worth hiding from the model, unlike BPE's merge frequencies).
    """
    kind = spec.get("kind")
    if kind == SAVED:
        return tokenizer_from_state(spec["state"])
    if kind == "tiktoken":
        return TiktokenTokenizer(spec.get("encoding", "gpt2"))
    if kind == "char":
        return CharTokenizer.train(itertools.chain(training_text(), validation_text()))
    if kind == "bpe":
        return BPETokenizer.train(training_text(), spec["vocab_size"], spec["train_sample_mb"])
    raise TokenizerError(f"Unknown tokenizer kind {kind!r}; use one of: tiktoken, char, bpe.")


def tokenizer_from_state(state: dict) -> Tokenizer:
    """Rebuild a tokenizer from its state_dict() — what a checkpoint and a cache carry."""
    kind = state.get("kind")
    if kind == "tiktoken":
        return TiktokenTokenizer(state["encoding"])
    if kind == "char":
        return CharTokenizer(state["chars"])
    if kind == "bpe":
        return BPETokenizer.from_state(state)
    raise TokenizerError(f"Cannot restore a tokenizer of unknown kind {kind!r}.")


__all__ = [
    "EOS_TEXT",
    "SAVED",
    "Tokenizer",
    "BPETokenizer",
    "CharTokenizer",
    "TokenizerError",
    "build_tokenizer",
    "saved_tokenizer_spec",
    "tokenizer_from_state",
]
