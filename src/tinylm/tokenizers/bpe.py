"""A byte-level BPE learned from the training text with 🤗 tokenizers (and any other 🤗 tokenizers
tokenizer, such as one that comes with a 🤗 transformers model).

Byte-level means every string can be encoded (there is no unknown token): text is first mapped
to bytes, and merges are learned on top of the 256 byte symbols. A small vocabulary trained on
the data a model learns from spends far fewer parameters on the embedding than GPT-2's 50,257
tokens, which is what a tiny model needs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence

import numpy as np
from tokenizers import Tokenizer as HFTokenizer
from tokenizers import decoders, models, pre_tokenizers, trainers

from tinylm.errors import TokenizerError
from tinylm.tokenizers.base import EOS_TEXT, Tokenizer


class BPETokenizer(Tokenizer):
    kind = "bpe"

    def __init__(self, backend: HFTokenizer) -> None:
        self.backend = backend
        # Text that happens to contain "<|endoftext|>" is ordinary text, as in the other backends.
        self.backend.encode_special_tokens = True
        eos = backend.token_to_id(EOS_TEXT)
        if eos is None:
            raise TokenizerError(f"This BPE tokenizer has no {EOS_TEXT} token.")
        self._eos_id = eos

    @classmethod
    def from_spec(
        cls,
        spec: dict,
        training_text: Callable[[], Iterable[str]],
        validation_text: Callable[[], Iterable[str]],
    ) -> BPETokenizer:
        """Merges learned from the training split alone."""
        return cls.train(training_text(), spec["vocab_size"], spec["train_sample_mb"])

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int, sample_mb: float) -> BPETokenizer:
        """Learn merges from the first `sample_mb` MB of `texts` until `vocab_size` tokens."""
        if vocab_size < 257:
            raise TokenizerError(
                f"tokenizer.vocab_size must be at least 257 (256 bytes + {EOS_TEXT}), "
                f"not {vocab_size}."
            )
        backend = HFTokenizer(models.BPE())
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        backend.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=[EOS_TEXT],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        backend.train_from_iterator(first_megabytes(texts, sample_mb), trainer)
        return cls(backend)

    @property
    def vocab_size(self) -> int:
        return self.backend.get_vocab_size()

    @property
    def eos_id(self) -> int:
        return self._eos_id

    def encode(self, text: str) -> list[int]:
        return self.backend.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: Sequence[str]) -> list[np.ndarray]:
        # Rust threads encode the batch on every core; the fast variant skips computing the
        # character offsets of each token, which nothing here needs (about twice as fast).
        encodings = self.backend.encode_batch_fast(list(texts), add_special_tokens=False)
        return [np.asarray(encoding.ids, dtype=np.int64) for encoding in encodings]

    def decode(self, ids: Sequence[int]) -> str:
        return self.backend.decode(list(ids), skip_special_tokens=False)

    def token_byte_lengths(self) -> np.ndarray:
        decoder = self.backend.decoder
        byte_level = isinstance(decoder, decoders.ByteLevel)
        if not byte_level and not isinstance(decoder, decoders.Fuse):
            raise TokenizerError(
                "Bits per byte need a byte-level or a character tokenizer; this 🤗 tokenizer "
                f"decodes with {type(decoder).__name__}."
            )
        lengths = np.zeros(self.vocab_size, dtype=np.int64)
        for token, token_id in self.backend.get_vocab(with_added_tokens=False).items():
            # Byte-level tokens spell each byte as one character of a 256-character alphabet;
            # the tokens a Fuse decoder joins are the text itself (an exported char vocabulary).
            lengths[token_id] = len(token) if byte_level else len(token.encode("utf-8"))
        for token_id, added in self.backend.get_added_tokens_decoder().items():
            lengths[token_id] = 0 if added.special else len(added.content.encode("utf-8"))
        return lengths

    def state_dict(self) -> dict:
        return {"kind": self.kind, "json": self.backend.to_str()}

    @classmethod
    def from_state(cls, state: dict) -> BPETokenizer:
        return cls(HFTokenizer.from_str(state["json"]))


def first_megabytes(texts: Iterable[str], megabytes: float) -> Iterator[str]:
    budget = megabytes * 1e6
    for text in texts:
        if budget <= 0:
            return
        budget -= len(text)
        yield text
