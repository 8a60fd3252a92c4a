"""The settings of each `tokenizer=` choice (conf/tokenizer/*.yaml), picked by tokenizer.kind."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tinylm.schema import setting


@dataclass(kw_only=True)
class BPESettings:
    kind: Literal["bpe"]
    # At most 2^20: beyond any model's vocabulary (GPT-4's 100k, Gemma's 256k), and 🤗's trainer
    # allocates memory for every token asked (1e9 aborted the process asking for 70 GB).
    vocab_size: int = setting(
        help="tokens learned from the training text, at least 256 bytes + <|endoftext|>",
        low=257,
        high=2**20,
    )
    train_sample_mb: float = setting(
        help="megabytes of training text the merges are learned from", low=0, low_open=True
    )


@dataclass(kw_only=True)
class CharSettings:
    kind: Literal["char"]


@dataclass(kw_only=True)
class TiktokenSettings:
    kind: Literal["tiktoken"]
    encoding: str = setting(help="a tiktoken encoding: gpt2, r50k_base, cl100k_base, ...")


TOKENIZER_SETTINGS = {"bpe": BPESettings, "char": CharSettings, "tiktoken": TiktokenSettings}
