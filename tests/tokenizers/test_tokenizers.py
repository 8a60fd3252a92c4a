import json

import pytest
import tiktoken

from tinylm.errors import TokenizerError
from tinylm.tokenizers import EOS_TEXT, build_tokenizer, tokenizer_from_state

TEXT = 'Once upon a time, Lily saw a shiny red ball!\nShe said: "Wow." 42 ü'


def test_gpt2_ids_match_tiktoken():
    tokenizer = build_tokenizer({"kind": "tiktoken", "encoding": "gpt2"}, training_text=None)
    reference = tiktoken.get_encoding("gpt2")
    assert tokenizer.encode(TEXT) == reference.encode_ordinary(TEXT)
    assert tokenizer.encode("Hello world") == [15496, 995]
    assert tokenizer.eos_id == 50256 and tokenizer.vocab_size == 50257
    assert tokenizer.decode(tokenizer.encode(TEXT)) == TEXT
    texts = [TEXT, "Hello world", f"a {EOS_TEXT} b"] * 300  # more than one thread's group
    encoded = tokenizer.encode_batch(texts)
    assert [ids.tolist() for ids in encoded] == [reference.encode_ordinary(t) for t in texts]


def test_special_token_text_in_data_is_encoded_as_plain_text():
    tokenizer = build_tokenizer({"kind": "tiktoken", "encoding": "gpt2"}, training_text=None)
    assert tokenizer.eos_id not in tokenizer.encode(f"a {EOS_TEXT} b")


def test_an_unknown_tiktoken_encoding_is_a_clear_error():
    with pytest.raises(TokenizerError, match="no encoding named 'gpt9'"):
        build_tokenizer({"kind": "tiktoken", "encoding": "gpt9"}, training_text=None)


def test_char_tokenizer_round_trips_and_reserves_id_zero_for_eos():
    tokenizer = build_tokenizer({"kind": "char"}, lambda: iter([TEXT]))
    ids = tokenizer.encode(TEXT)
    assert tokenizer.decode(ids) == TEXT
    assert tokenizer.eos_id == 0 and 0 not in ids
    assert tokenizer.vocab_size == len(set(TEXT)) + 1
    assert tokenizer.decode([*tokenizer.encode("Lily"), tokenizer.eos_id]) == "Lily" + EOS_TEXT


def test_char_vocabulary_does_not_depend_on_text_order():
    a = build_tokenizer({"kind": "char"}, lambda: iter(["abc", "xyz"]))
    b = build_tokenizer({"kind": "char"}, lambda: iter(["zyx", "cba"]))
    assert a.encode("cab") == b.encode("cab")


def test_char_tokenizer_names_characters_it_never_saw():
    tokenizer = build_tokenizer({"kind": "char"}, lambda: iter(["hello world"]))
    with pytest.raises(TokenizerError, match=r"never saw '!', 'H'"):
        tokenizer.encode("Hello world!")


@pytest.mark.parametrize(
    "spec",
    [{"kind": "tiktoken", "encoding": "gpt2"}, {"kind": "char"}],
)
def test_a_tokenizer_is_restored_from_its_json_state(spec):
    tokenizer = build_tokenizer(spec, lambda: iter([TEXT]))
    state = json.loads(json.dumps(tokenizer.state_dict()))  # survives a trip through JSON
    restored = tokenizer_from_state(state)
    assert restored.encode(TEXT) == tokenizer.encode(TEXT)
    assert restored.vocab_size == tokenizer.vocab_size and restored.eos_id == tokenizer.eos_id


def test_unknown_kinds_are_refused():
    with pytest.raises(TokenizerError, match="Unknown tokenizer kind"):
        build_tokenizer({"kind": "sentencepiece"}, training_text=None)
    with pytest.raises(TokenizerError, match="Unknown tokenizer kind"):
        tokenizer_from_state({"kind": "sentencepiece"})


def test_tiktoken_without_its_files_and_without_network_says_what_to_do(tmp_path, monkeypatch):
    import tiktoken.load
    import tiktoken.registry

    def offline(url):
        raise ConnectionError(f"cannot reach {url}")

    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))  # an empty cache
    monkeypatch.setattr(tiktoken.registry, "ENCODINGS", {})  # nothing loaded in this process
    monkeypatch.setattr(tiktoken.load, "read_file", offline)
    with pytest.raises(TokenizerError, match=r"downloading them failed.*TIKTOKEN_CACHE_DIR"):
        build_tokenizer({"kind": "tiktoken", "encoding": "gpt2"}, training_text=None)
