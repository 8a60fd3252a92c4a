"""One tokenizer interface, several backends, chosen by `tokenizer.kind`."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from tinylm.errors import TokenizerError
from tinylm.tokenizers.base import EOS_TEXT, Tokenizer
from tinylm.tokenizers.bpe import BPETokenizer
from tinylm.tokenizers.char import CharTokenizer
from tinylm.tokenizers.tiktoken_tokenizer import TiktokenTokenizer

SAVED = "saved"  # the kind of a spec that carries a finished tokenizer's state


def saved_tokenizer_spec(tokenizer: Tokenizer, learned_from: dict | None = None) -> dict:
    """A spec that rebuilds exactly `tokenizer` rather than learning a new one from the data:
    how evaluation tokenizes any dataset with the tokenizer a checkpoint was trained with.

    `learned_from` is the config spec the tokenizer was made from (a checkpoint records it), so
    that data tokenized with it while training can be found again instead of tokenized twice.
    """
    spec = {"kind": SAVED, "state": tokenizer.state_dict()}
    if learned_from is not None:
        spec["learned_from"] = learned_from
    return spec


BACKENDS: dict[str, type[Tokenizer]] = {
    backend.kind: backend for backend in (TiktokenTokenizer, CharTokenizer, BPETokenizer)
}


def backend_for(kind: str | None) -> type[Tokenizer]:
    if kind not in BACKENDS:
        raise TokenizerError(f"Unknown tokenizer kind {kind!r}; use one of: {', '.join(BACKENDS)}.")
    return BACKENDS[kind]


def build_tokenizer(
    spec: dict,
    training_text: Callable[[], Iterable[str]],
    validation_text: Callable[[], Iterable[str]] = tuple,
) -> Tokenizer:
    """Make the tokenizer a `conf/tokenizer/*.yaml` (or `saved_tokenizer_spec`) describes."""
    if spec.get("kind") == SAVED:
        return tokenizer_from_state(spec["state"])
    return backend_for(spec.get("kind")).from_spec(spec, training_text, validation_text)


def tokenizer_from_state(state: dict) -> Tokenizer:
    """Rebuild a tokenizer from its state_dict() — what a checkpoint and a cache carry."""
    return backend_for(state.get("kind")).from_state(state)


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
