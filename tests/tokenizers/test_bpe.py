import pytest

from tests.conftest import make_story_corpus
from tinylm.errors import TokenizerError
from tinylm.tokenizers import EOS_TEXT, BPETokenizer, build_tokenizer, tokenizer_from_state

SPEC = {"kind": "bpe", "vocab_size": 400, "train_sample_mb": 100}


@pytest.fixture(scope="module")
def bpe() -> BPETokenizer:
    return build_tokenizer(SPEC, lambda: iter(make_story_corpus(300)))


def test_bpe_learns_merges_up_to_the_requested_vocabulary(bpe):
    assert 300 < bpe.vocab_size <= 400  # 256 bytes + EOS + merges
    story = make_story_corpus(1, seed=9)[0]
    assert len(bpe.encode(story)) < len(story.encode()) / 2  # merges compress the text


def test_bpe_round_trips_any_text_byte_for_byte(bpe):
    text = "Zoë saw 🐸 — a frog! Ünïcödé, tabs\tand\nnewlines never seen in training."
    assert bpe.decode(bpe.encode(text)) == text
    encoded = bpe.encode_batch([text, "Tom"])
    assert [ids.tolist() for ids in encoded] == [bpe.encode(text), bpe.encode("Tom")]


def test_bpe_treats_special_token_text_as_plain_text(bpe):
    ids = bpe.encode(f"a {EOS_TEXT} b")
    assert bpe.eos_id not in ids
    assert bpe.decode([*bpe.encode("The end."), bpe.eos_id]) == "The end." + EOS_TEXT


def test_bpe_is_restored_from_its_state_and_training_is_deterministic(bpe):
    restored = tokenizer_from_state(bpe.state_dict())
    again = build_tokenizer(SPEC, lambda: iter(make_story_corpus(300)))
    text = make_story_corpus(5, seed=4)

    def ids(tokenizer):
        return [array.tolist() for array in tokenizer.encode_batch(text)]

    assert ids(restored) == ids(bpe) == ids(again)
    assert restored.eos_id == bpe.eos_id


def test_bpe_learns_only_from_its_sample(bpe):
    tiny_sample = {**SPEC, "train_sample_mb": 1e-4}  # the first story only
    small = build_tokenizer(tiny_sample, lambda: iter(make_story_corpus(300)))
    assert small.vocab_size < bpe.vocab_size


def test_a_vocabulary_too_small_for_the_bytes_is_refused():
    with pytest.raises(TokenizerError, match="at least 257"):
        build_tokenizer({**SPEC, "vocab_size": 100}, lambda: iter(["abc"]))
