"""tinylm's tokenizers as 🤗 tokenizer files, and a 🤗 tokenizer as one of tinylm's.

Every tinylm tokenizer becomes a 🤗 `tokenizers` Tokenizer that encodes text to the same ids:
- tiktoken: its ranks converted to GPT-2's byte-level vocabulary and merges (transformers'
  TikTokenConverter), with tiktoken's own pre-tokenizing pattern;
- bpe: it already is one;
- char: a BPE model without merges, whose vocabulary is the characters (so each character is a
  token) and whose decoder joins them as they are.
One difference remains, by design of 🤗 tokenizers: "<|endoftext|>" written in text becomes the
end-of-text token there, where tinylm encodes it as plain text. A character the char vocabulary
never saw is dropped there, where tinylm refuses the text: read back by tinylm (init_from), such
a folder's tokenizer is a char tokenizer again, which refuses it.
"""

from __future__ import annotations

import json
from pathlib import Path

import tiktoken
from tokenizers import AddedToken, decoders, models
from tokenizers import Tokenizer as HFTokenizer
from transformers import PreTrainedTokenizerBase
from transformers.convert_slow_tokenizer import TikTokenConverter

from tinylm.errors import TokenizerError
from tinylm.tokenizers import EOS_TEXT, BPETokenizer, CharTokenizer, Tokenizer
from tinylm.tokenizers.tiktoken_tokenizer import TiktokenTokenizer

GPT2_VOCAB_SIZE = 50_257
# Text on which a 🤗 tokenizer must encode as tiktoken's gpt2 does to be taken for it.
GPT2_PROBE = "Hello world! It's 2024:  spaces,\ttabs\n\nlines, ünïcödé, 日本語 and 🤗 don't matter."


class RanksConverter(TikTokenConverter):
    """transformers' converter, given a tiktoken encoding rather than the path of a ranks file.
    (tiktoken keeps the pattern, ranks and special tokens in private attributes, which
    transformers' own convert_tiktoken_to_fast reads too.)"""

    def __init__(self, encoding: tiktoken.Encoding) -> None:
        super().__init__(pattern=encoding._pat_str, extra_special_tokens=encoding._special_tokens)
        self.ranks = encoding._mergeable_ranks

    def load_tiktoken_bpe(self, tiktoken_url: str) -> dict[bytes, int]:
        return self.ranks


def hf_backend(tokenizer: Tokenizer) -> HFTokenizer:
    """A 🤗 tokenizers Tokenizer that encodes text to `tokenizer`'s ids (a new object)."""
    if isinstance(tokenizer, TiktokenTokenizer):
        return RanksConverter(tokenizer.encoding).converted()
    if isinstance(tokenizer, BPETokenizer):
        return HFTokenizer.from_str(tokenizer.backend.to_str())
    if isinstance(tokenizer, CharTokenizer):
        vocab = {EOS_TEXT: tokenizer.eos_id, **tokenizer.char_to_id}
        backend = HFTokenizer(models.BPE(vocab=vocab, merges=[]))
        backend.add_special_tokens([AddedToken(EOS_TEXT, special=True, normalized=False)])
        backend.decoder = decoders.Fuse()
        return backend
    raise TokenizerError(f"No 🤗 tokenizer equals a {tokenizer.kind} tokenizer.")


def save_tokenizer_files(tokenizer: Tokenizer, folder: Path, context: int) -> None:
    """tokenizer.json and tokenizer_config.json, which AutoTokenizer.from_pretrained reads.

    The config is written here rather than by save_pretrained, which in transformers 5 names its
    own class (TokenizersBackend) that transformers 4 cannot load; both read this one.
    """
    hf_backend(tokenizer).save(str(folder / "tokenizer.json"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "eos_token": EOS_TEXT,
        "bos_token": EOS_TEXT,  # GPT-2's convention: one token both starts and ends a document
        "model_max_length": context,
        "clean_up_tokenization_spaces": False,  # decode to the text itself, as tinylm does
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")


def tinylm_tokenizer(hf_tokenizer: PreTrainedTokenizerBase, source: str) -> Tokenizer:
    """A tinylm tokenizer giving `hf_tokenizer`'s ids: tiktoken's gpt2 when it is GPT-2's (the
    same ids, encoded faster, and a round trip through an export keeps the tokenizer's kind),
    otherwise its 🤗 tokenizers backend itself."""
    if not hf_tokenizer.is_fast:
        raise TokenizerError(
            f"{source}'s tokenizer has no tokenizer.json (a 🤗 tokenizers tokenizer), which tinylm "
            "needs; save it with a fast tokenizer."
        )
    backend = HFTokenizer.from_str(hf_tokenizer.backend_tokenizer.to_str())
    if is_gpt2(backend):
        return TiktokenTokenizer("gpt2")
    return char_tokenizer_of(backend) or BPETokenizer(backend)


def char_tokenizer_of(backend: HFTokenizer) -> CharTokenizer | None:
    """The char tokenizer that `backend` was exported from (hf_backend), when it is one: a BPE
    without merges whose vocabulary is EOS (id 0) and single characters in tinylm's order."""
    model = json.loads(backend.to_str())["model"]
    if model["type"] != "BPE" or model["merges"]:
        return None
    vocab = backend.get_vocab(with_added_tokens=True)
    chars = [token for token in vocab if token != EOS_TEXT]
    if vocab.get(EOS_TEXT) != 0 or any(len(char) != 1 for char in chars):
        return None
    tokenizer = CharTokenizer(chars)
    return tokenizer if tokenizer.char_to_id == {c: vocab[c] for c in chars} else None


def is_gpt2(backend: HFTokenizer) -> bool:
    """Whether `backend` holds GPT-2's vocabulary and pre-tokenizes text as GPT-2 does."""
    if backend.get_vocab_size() != GPT2_VOCAB_SIZE:
        return False  # cheap, and spares other tokenizers the conversion below
    try:
        gpt2 = TiktokenTokenizer("gpt2")
    except TokenizerError:  # tiktoken's files are out of reach: the 🤗 backend gives the same ids
        return False
    return backend.get_vocab() == hf_backend(gpt2).get_vocab() and (
        backend.encode(GPT2_PROBE, add_special_tokens=False).ids == gpt2.encode(GPT2_PROBE)
    )
