"""Local text as a stream of pieces: `.txt` and `.jsonl` files from a file, a folder or a glob.

A piece is (text, ends_document). Long documents arrive in pieces of about CHUNK_CHARS, cut at
line ends, so a file larger than memory is tokenized without ever being read whole.
"""

from __future__ import annotations

import codecs
import glob
import itertools
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from tinylm.errors import DataError
from tinylm.tokenizers import EOS_TEXT

SUFFIXES = (".txt", ".jsonl")
CHUNK_CHARS = 1 << 20

Piece = tuple[str, bool]


def resolve_text_files(path: str) -> list[Path]:
    """A file, a folder (searched recursively) or a glob -> the sorted `.txt`/`.jsonl` files."""
    if not path:
        raise DataError("data.path is empty; point it at a .txt/.jsonl file, a folder or a glob.")
    target = Path(path).expanduser()
    if target.is_file():
        files = [target]
    elif target.is_dir():
        files = [p for p in target.rglob("*") if p.is_file() and p.suffix in SUFFIXES]
    else:
        files = [Path(p) for p in glob.glob(str(target), recursive=True) if Path(p).is_file()]
        if not files:
            raise DataError(f"data.path {path!r} matches no file; check the path or the glob.")
    unsupported = [p for p in files if p.suffix not in SUFFIXES]
    if unsupported:
        raise DataError(
            f"{unsupported[0]} is not a .txt or .jsonl file; data=text reads only those."
        )
    if not files:
        raise DataError(f"No .txt or .jsonl file under {path!r}.")
    if all(p.stat().st_size == 0 for p in files):
        raise DataError(f"data.path {path!r} holds no text (its files are empty); give text.")
    return sorted(files)


def files_fingerprint(files: list[Path]) -> list[dict]:
    """What identifies the text: each file's absolute path, size and modification time."""
    fingerprint = []
    for file in files:
        stat = file.stat()
        fingerprint.append(
            {"path": str(file.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
        )
    return fingerprint


def iter_pieces(files: list[Path]) -> Iterator[Piece]:
    for file in files:
        yield from (iter_jsonl(file) if file.suffix == ".jsonl" else iter_txt(file))


def iter_txt(file: Path) -> Iterator[Piece]:
    """A text file is one document, or several separated by lines holding only <|endoftext|>
    (the layout of the official TinyStories*.txt files)."""
    with open_utf8(file) as handle:
        yield from documents_from_lines(handle)


def documents_from_lines(lines: Iterable[str], limit: int | None = None) -> Iterator[Piece]:
    """The documents in `lines` (each with its line end), separated by lines that hold only
    <|endoftext|>, as pieces: the one rule for every text in this layout (local .txt files,
    TinyStories' .txt files).

    A document loses the blank lines around it; one that holds nothing but white space is
    skipped. One longer than CHUNK_CHARS arrives in several pieces cut at line ends, so a file
    larger than memory is never read whole. At most `limit` documents (None: all).
    """
    lines_so_far: list[str] = []
    size = 0
    started = False  # a piece of the current document was yielded already
    documents = 0
    for line in itertools.chain(lines, [EOS_TEXT]):  # the end of the text ends a document too
        if line.strip() == EOS_TEXT:
            text = "".join(lines_so_far)
            text = text.rstrip("\n") if started else text.strip("\n")
            if started or text.strip():
                yield text, True
                documents += 1
                if documents == limit:
                    return
            lines_so_far, size, started = [], 0, False
            continue
        lines_so_far.append(line)
        size += len(line)
        if size >= CHUNK_CHARS:
            text = "".join(lines_so_far)
            yield (text if started else text.lstrip("\n")), False
            lines_so_far, size, started = [], 0, True


def iter_jsonl(file: Path) -> Iterator[Piece]:
    """One JSON object per line; its `text` field is one document."""
    with open_utf8(file) as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                text = json.loads(line)["text"]
            except (json.JSONDecodeError, KeyError, TypeError):
                raise DataError(
                    f"{file}:{number} is not a JSON object with a 'text' field; fix that line."
                ) from None
            if not isinstance(text, str):
                raise DataError(f"{file}:{number}: the 'text' field must be a string.")
            yield text, True


@contextmanager
def open_utf8(file: Path) -> Iterator[TextIO]:
    """`file` opened as UTF-8 text. Text that is not UTF-8 (a binary file, another encoding)
    is a DataError naming the file and its first byte that is not, never silently replaced."""
    try:
        with open(file, encoding="utf-8") as handle:
            yield handle
    except UnicodeDecodeError:
        offset = first_non_utf8_byte(file)
        raise DataError(
            f"data.path: {file} is not UTF-8 text: the byte at offset {offset:,} cannot be "
            "decoded; give text files, converted to UTF-8 (e.g. iconv -t UTF-8)."
        ) from None


def first_non_utf8_byte(file: Path, block_size: int = 1 << 20) -> int:
    """The offset of the first byte of `file` that does not decode as UTF-8 (its size when
    the file ends in the middle of a character)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0  # bytes handed to the decoder so far
    with open(file, "rb") as handle:
        while True:
            block = handle.read(block_size)
            pending = len(decoder.getstate()[0])  # the start of a character cut by the last block
            try:
                decoder.decode(block, final=not block)
            except UnicodeDecodeError as error:
                return offset - pending + error.start
            if not block:
                return offset
            offset += len(block)
