import json

import pytest

from tinylm.data.text_files import (
    CHUNK_CHARS,
    documents_from_lines,
    first_non_utf8_byte,
    iter_pieces,
    resolve_text_files,
)
from tinylm.errors import DataError
from tinylm.tokenizers import EOS_TEXT


def test_txt_documents_are_separated_by_endoftext_lines(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("First story.\nLine two.\n<|endoftext|>\nSecond story.\n")
    assert list(iter_pieces([path])) == [("First story.\nLine two.", True), ("Second story.", True)]


def test_documents_lose_surrounding_blank_lines_and_empty_ones_are_skipped():
    lines = ["One.\n", "\n", "Two.\n", f"{EOS_TEXT}\n", "\n", "Three.\n", f"{EOS_TEXT}\n",
             "  \n", f"{EOS_TEXT}\n", "Four."]  # fmt: skip
    documents = [("One.\n\nTwo.", True), ("Three.", True), ("Four.", True)]
    assert list(documents_from_lines(lines)) == documents
    assert list(documents_from_lines(lines, limit=2)) == documents[:2]


def test_a_long_document_arrives_in_line_aligned_pieces(tmp_path):
    path = tmp_path / "big.txt"
    line = "x" * 999 + "\n"
    path.write_text(line * (2 * CHUNK_CHARS // len(line) + 10))
    pieces = list(iter_pieces([path]))
    assert len(pieces) == 3
    assert [ends for _, ends in pieces] == [False, False, True]
    assert all(text.endswith("\n") for text, _ in pieces[:-1])  # cut at line ends
    assert "".join(text for text, _ in pieces) == path.read_text().rstrip("\n")


def test_jsonl_lines_are_documents(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text(json.dumps({"text": "one", "id": 1}) + "\n\n" + json.dumps({"text": "two"}))
    assert list(iter_pieces([path])) == [("one", True), ("two", True)]


def test_a_jsonl_line_without_text_names_the_line(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text(json.dumps({"text": "ok"}) + "\n" + json.dumps({"body": "no"}) + "\n")
    with pytest.raises(DataError, match=r"docs.jsonl:2 .*'text' field"):
        list(iter_pieces([path]))


def test_a_folder_or_a_glob_gives_sorted_text_files(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ["b.txt", "a.jsonl", "sub/c.txt"]:
        (tmp_path / name).write_text("x")
    (tmp_path / "notes.md").write_text("ignored in a folder")
    names = lambda files: [f.relative_to(tmp_path).as_posix() for f in files]  # noqa: E731
    assert names(resolve_text_files(str(tmp_path))) == ["a.jsonl", "b.txt", "sub/c.txt"]
    assert names(resolve_text_files(str(tmp_path / "**" / "*.txt"))) == ["b.txt", "sub/c.txt"]


@pytest.mark.parametrize(
    "path, message",
    [("missing/*.txt", "matches no file"), ("notes.md", "not a .txt or .jsonl"), ("", "empty")],
)
def test_bad_paths_are_one_clear_error(tmp_path, path, message):
    (tmp_path / "notes.md").write_text("x")
    with pytest.raises(DataError, match=message):
        resolve_text_files(str(tmp_path / path) if path else "")


GOOD_LINE = '{"text": "Café"}\n'.encode()  # UTF-8 text, and a JSON line


@pytest.mark.parametrize(
    "content, offset",
    [(b"\x89PNG\r\n\x1a\n\x00\x00", 0),  # a binary file
     (GOOD_LINE * 3 + '{"text": "Crème"}\n'.encode("latin-1"), 3 * len(GOOD_LINE) + 12),
     (GOOD_LINE + "é".encode()[:1], len(GOOD_LINE))],  # ends in the middle of a character
    ids=["binary", "latin-1 after utf-8", "cut character"],
)  # fmt: skip
@pytest.mark.parametrize("suffix", [".txt", ".jsonl"])
def test_text_that_is_not_utf8_names_the_file_and_the_first_bad_byte(
    tmp_path, content, offset, suffix
):
    path = tmp_path / f"data{suffix}"
    path.write_bytes(content)
    with pytest.raises(DataError, match=rf"{path} is not UTF-8 text: the byte at offset {offset} "):
        list(iter_pieces([path]))


def test_the_first_bad_byte_is_found_across_blocks(tmp_path):
    # "é" is two bytes; cut between them by the block boundary, they still decode.
    path = tmp_path / "long.txt"
    path.write_bytes(b"a" + "é".encode() * 10 + b"\xff")
    for block_size in (1, 2, 3, 4, 7):
        assert first_non_utf8_byte(path, block_size) == 21
