import io

from tinylm.generation.streaming import INCOMPLETE, TextStream
from tinylm.tokenizers.char import CharTokenizer
from tinylm.tokenizers.tiktoken_tokenizer import TiktokenTokenizer


class RecordingOutput(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)


def stream_all(tokenizer, ids: list[int]) -> RecordingOutput:
    out = RecordingOutput()
    stream = TextStream(tokenizer, out)
    for token in ids:
        stream.write(token)
    stream.close()
    return out


def test_characters_split_over_several_tokens_are_written_whole():
    tokenizer = TiktokenTokenizer("gpt2")
    text = "Tom saw a 🐸 and said: ça va?"
    ids = tokenizer.encode(text)
    frog = tokenizer.encode("🐸")
    assert len(frog) > 1 and all(INCOMPLETE in tokenizer.decode([t]) for t in frog)
    out = stream_all(tokenizer, ids)
    assert out.getvalue() == text + "\n"
    assert not any(INCOMPLETE in piece for piece in out.writes)
    assert len(out.writes) > 5  # written as it came, not all at the end


def test_each_character_token_is_written_at_once():
    tokenizer = CharTokenizer("abc ")
    out = stream_all(tokenizer, tokenizer.encode("abc cab"))
    assert out.writes == ["a", "b", "c", " ", "c", "a", "b", "\n"]
