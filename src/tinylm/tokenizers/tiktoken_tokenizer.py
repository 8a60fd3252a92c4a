"""OpenAI's BPE encodings through tiktoken: `gpt2` by default, any other by name."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import tiktoken

from tinylm.errors import TokenizerError
from tinylm.tokenizers.base import EOS_TEXT, Tokenizer

THREAD_GROUP = 256  # texts per thread task: few enough tasks that the GIL is rarely contended


class TiktokenTokenizer(Tokenizer):
    kind = "tiktoken"

    def __init__(self, encoding: str = "gpt2") -> None:
        self.encoding_name = encoding
        try:
            self.encoding = tiktoken.get_encoding(encoding)
        except ValueError as error:  # an unknown name
            raise TokenizerError(
                f"tiktoken has no encoding named {encoding!r}; choose one of "
                f"{', '.join(tiktoken.list_encoding_names())}."
            ) from error
        except Exception as error:  # the first use downloads the BPE files
            cache = os.environ.get("TIKTOKEN_CACHE_DIR", "tiktoken's default cache folder")
            raise TokenizerError(
                f"Could not load tiktoken's {encoding!r} encoding: its BPE files are not in "
                f"{cache} and downloading them failed ({type(error).__name__}). Connect to the "
                "internet once, or set TIKTOKEN_CACHE_DIR to a folder that holds them."
            ) from error
        if EOS_TEXT not in self.encoding.special_tokens_set:
            raise TokenizerError(f"tiktoken encoding {encoding!r} has no {EOS_TEXT} token.")
        self._eos_id = self.encoding.encode_single_token(EOS_TEXT)

    @classmethod
    def from_spec(
        cls,
        spec: dict,
        training_text: Callable[[], Iterable[str]],
        validation_text: Callable[[], Iterable[str]],
    ) -> TiktokenTokenizer:
        return cls(spec.get("encoding", "gpt2"))

    @classmethod
    def from_state(cls, state: dict) -> TiktokenTokenizer:
        return cls(state["encoding"])

    @property
    def vocab_size(self) -> int:
        return self.encoding.n_vocab

    @property
    def eos_id(self) -> int:
        return self._eos_id

    def encode(self, text: str) -> list[int]:
        return self.encoding.encode_ordinary(text)

    def encode_batch(self, texts: Sequence[str]) -> list[np.ndarray]:
        # tiktoken's Rust core releases the GIL, so threads encode on every core. Each thread
        # takes a group of texts, and encode_to_numpy skips building a Python int per token:
        # together about 3× tiktoken's own one-thread encoder on two cores (README).
        groups = [texts[i : i + THREAD_GROUP] for i in range(0, len(texts), THREAD_GROUP)]
        with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
            encoded = pool.map(self._encode_group, groups)
            return [ids for group in encoded for ids in group]

    def _encode_group(self, texts: Sequence[str]) -> list[np.ndarray]:
        # disallowed_special=() encodes "<|endoftext|>" in the text as plain text, like encode().
        return [self.encoding.encode_to_numpy(text, disallowed_special=()) for text in texts]

    def decode(self, ids: Sequence[int]) -> str:
        return self.encoding.decode(list(ids))

    def token_byte_lengths(self) -> np.ndarray:
        special = {self.encoding.encode_single_token(t) for t in self.encoding.special_tokens_set}
        lengths = np.zeros(self.vocab_size, dtype=np.int64)
        for token in range(self.vocab_size):
            if token in special:
                continue
            try:
                lengths[token] = len(self.encoding.decode_single_token_bytes(token))
            except KeyError:  # an id no token has (cl100k_base skips a few); never produced
                continue
        return lengths

    def state_dict(self) -> dict:
        return {"kind": self.kind, "encoding": self.encoding_name}

    def describe(self) -> str:
        return f"tiktoken {self.encoding_name} (vocab {self.vocab_size:,})"
