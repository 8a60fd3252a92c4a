"""The tokenized cache: text tokenized once into flat memmaps, reused while its fingerprint holds.

A cache is a folder `<cache_dir>/<name>-<hash of fingerprint>/` holding one `<split>.bin` per split
(uint16 ids, or uint32 when the vocabulary exceeds 65,535), `tokenizer.json` (the tokenizer's
state) and `meta.json` (the fingerprint, the counts, and each file's size and digest).

A cache is trusted only while its files are the ones meta.json records: a file truncated,
overwritten, deleted or edited since makes it rebuilt (or refused in one sentence when it cannot
be rebuilt), never read.

It is built in a temporary folder beside it and renamed into place in one step, so a cache
folder either is complete or does not exist: an interrupted build leaves only a temporary folder,
which the next build removes. A file lock lets one process build while the others wait for it
(sweeps, DDP ranks).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
from filelock import FileLock
from tqdm import tqdm  # not tqdm.auto: in a notebook without ipywidgets it warns

from tinylm.tokenizers import Tokenizer, tokenizer_from_state
from tinylm.utils.files import write_error

log = logging.getLogger(__name__)
T = TypeVar("T")

# 2: text files lose the blank lines around each document (data.text_files.documents_from_lines)
FORMAT_VERSION = 2
UINT16_LIMIT = 65_535
BATCH_CHARS = 8 << 20  # text handed to the tokenizer at once: big enough to keep every core busy
# Files up to this size are hashed whole each time a cache is opened (sha256 reads ~1 GB/s, and
# opening a cache reads its pages anyway); larger ones by DIGEST_BLOCKS blocks spread over them,
# which still catches a file overwritten or replaced, though not a single changed byte.
WHOLE_DIGEST_BYTES = 256 << 20
DIGEST_BLOCKS, DIGEST_BLOCK_BYTES = 64, 1 << 20
META = "meta.json"
CACHE_FOLDER_KEY = "paths.cache_dir"  # the setting that puts caches elsewhere


def token_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16 if vocab_size <= UINT16_LIMIT else np.uint32)


def fingerprint_key(fingerprint: dict) -> str:
    canonical = json.dumps(fingerprint, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass
class TokenizedCache:
    folder: Path
    meta: dict
    tokenizer: Tokenizer
    _mapped: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @classmethod
    def open(cls, folder: Path) -> TokenizedCache:
        meta = json.loads((folder / "meta.json").read_text())
        state = json.loads((folder / "tokenizer.json").read_text())
        return cls(folder, meta, tokenizer_from_state(state))

    def tokens(self, split: str) -> np.ndarray:
        """The split's token ids, memory-mapped (once): nothing is read until it is indexed."""
        if split not in self._mapped:
            path = self.folder / f"{split}.bin"
            if path.stat().st_size == 0:  # an empty file cannot be mapped
                self._mapped[split] = np.empty(0, dtype=self.meta["dtype"])
            else:
                self._mapped[split] = np.memmap(path, dtype=self.meta["dtype"], mode="r")
        return self._mapped[split]

    @property
    def key(self) -> str:
        return self.folder.name


class TokenWriter:
    """Appends token ids to a flat binary file, counting them."""

    def __init__(self, path: Path, dtype: np.dtype) -> None:
        self.handle = open(path, "wb")  # noqa: SIM115 (closed by close() / __exit__)
        self.dtype = dtype
        self.tokens = 0

    def write(self, ids: Iterable[int] | np.ndarray) -> None:
        array = np.ascontiguousarray(ids, dtype=self.dtype)
        # Not array.tofile: a full disk is then a bare "N requested and M written", no errno.
        self.handle.write(array.data)
        self.tokens += array.size

    def close(self) -> None:
        self.handle.close()

    def __enter__(self) -> TokenWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass
class TokenizationStats:
    documents: int = 0
    text_bytes: int = 0
    tokens: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        rate = self.text_bytes / 1e6 / max(self.seconds, 1e-9)
        return (
            f"Tokenized {self.documents:,} documents ({self.text_bytes / 1e6:,.1f} MB) into "
            f"{self.tokens:,} tokens in {self.seconds:,.1f} s ({rate:,.1f} MB/s)"
        )


def tokenize_stream(
    pieces: Iterable[tuple[str, bool, T]],
    tokenizer: Tokenizer,
    stats: TokenizationStats,
    description: str = "Tokenizing",
) -> Iterator[tuple[np.ndarray, T]]:
    """Tokenize (text, ends_document, tag) pieces in large batches, in order.

    Yields (ids, tag) per piece, with EOS appended to the last piece of each document. Batches
    of ~8 MB keep every core busy in the backends that encode with threads (tiktoken, 🤗
    tokenizers). Progress goes to a bar and the totals into `stats`.
    """
    started = time.perf_counter()
    with tqdm(desc=description, unit="B", unit_scale=True, mininterval=1.0) as progress:
        for batch in batched_by_size(pieces, BATCH_CHARS):
            encoded = tokenizer.encode_batch([text for text, _, _ in batch])
            size = sum(len(text.encode()) for text, _, _ in batch)
            for ids, (_, ends_document, tag) in zip(encoded, batch, strict=True):
                if ends_document:
                    ids = np.append(ids, tokenizer.eos_id)
                    stats.documents += 1
                stats.tokens += len(ids)
                yield ids, tag
            stats.text_bytes += size
            stats.seconds = time.perf_counter() - started
            progress.update(size)


def batched_by_size(items: Iterable[tuple[str, bool, T]], max_chars: int) -> Iterator[list]:
    batch: list = []
    size = 0
    for item in items:
        batch.append(item)
        size += len(item[0])
        if size >= max_chars:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def load_or_build(
    cache_dir: str | Path,
    name: str,
    fingerprint: dict,
    build: Callable[[Path], tuple[Tokenizer, dict]],
) -> TokenizedCache:
    """Open the cache for `fingerprint`, building it first if no complete one exists.

    `build(folder)` writes one `<split>.bin` per split into `folder` and returns the tokenizer it
    used and its counts, e.g. {"documents": 120, "splits": {"train": {"tokens": 9000}, ...}}.
    A cache folder that cannot be written (a full disk, a read-only folder, a file in its place)
    is a WriteError naming it; a cache of that fingerprint written earlier is kept.
    """
    folder, fingerprint = cache_folder(cache_dir, name, fingerprint)
    if why_unusable(folder, fingerprint) is None:
        return TokenizedCache.open(folder)

    with cache_writes(folder), FileLock(str(folder) + ".lock"):
        unusable = why_unusable(folder, fingerprint)
        if unusable is None:  # built by another process while we waited
            return TokenizedCache.open(folder)
        if folder.exists():
            log.warning(f"The tokenized cache {folder} {unusable}: tokenizing again.")
        remove_leftovers(folder)
        log.info("Tokenizing into %s", folder)
        partial = folder.with_name(f".{folder.name}.partial-{os.getpid()}")
        try:
            # Made inside the try: a Ctrl-C that lands just after mkdir must remove it too.
            partial.mkdir()
            started = time.perf_counter()
            tokenizer, counts = build(partial)
            (partial / "tokenizer.json").write_text(json.dumps(tokenizer.state_dict()))
            meta = {
                "fingerprint": fingerprint,
                "dtype": token_dtype(tokenizer.vocab_size).name,
                "vocab_size": tokenizer.vocab_size,
                **counts,
                "build_seconds": round(time.perf_counter() - started, 2),
                "files": file_records(partial),
            }
            # meta.json is written last: its presence marks a finished build.
            (partial / META).write_text(json.dumps(meta, indent=2))
            os.replace(partial, folder)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
    log.info("Wrote the tokenized cache %s", folder)
    return TokenizedCache.open(folder)


@contextmanager
def cache_writes(folder: Path) -> Iterator[None]:
    """An OSError while writing the cache `folder` (one without a file name: a write to a full
    disk) as a WriteError, one sentence naming it; reading the source text fails on its own."""
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        yield
    except OSError as error:
        path = Path(error.filename) if error.filename else folder
        if error.filename and not path.is_relative_to(folder.parent):
            raise
        raise write_error(error, path, CACHE_FOLDER_KEY) from error


def open_complete(cache_dir: str | Path, name: str, fingerprint: dict) -> TokenizedCache | None:
    """The complete cache for `fingerprint`, or None when there is none (nothing is built)."""
    folder, fingerprint = cache_folder(cache_dir, name, fingerprint)
    return TokenizedCache.open(folder) if is_complete(folder, fingerprint) else None


def cache_folder(cache_dir: str | Path, name: str, fingerprint: dict) -> tuple[Path, dict]:
    """The folder of the cache for `fingerprint`, and the whole fingerprint it records."""
    fingerprint = {"format_version": FORMAT_VERSION, **fingerprint}
    return Path(cache_dir).expanduser() / f"{name}-{fingerprint_key(fingerprint)}", fingerprint


def is_complete(folder: Path, fingerprint: dict) -> bool:
    return why_unusable(folder, fingerprint) is None


def why_unusable(folder: Path, fingerprint: dict) -> str | None:
    """None when `folder` holds a finished cache of `fingerprint` whose files are those its
    meta.json records; otherwise why it cannot be used, in words."""
    try:
        meta = json.loads((folder / META).read_text())
    except (OSError, json.JSONDecodeError):
        return f"has no readable {META}"
    if meta.get("fingerprint") != fingerprint:
        return f"was written for other data or another tokenizer (its {META} says so)"
    return file_mismatch(folder, meta.get("files"))


def file_records(folder: Path) -> dict[str, dict]:
    """Each file of a finished build (meta.json aside): its size and digest."""
    return {
        path.name: {"bytes": path.stat().st_size, "sha256": file_digest(path)}
        for path in sorted(folder.iterdir())
        if path.is_file() and path.name != META
    }


def file_mismatch(folder: Path, records: dict[str, dict] | None) -> str | None:
    """How `folder`'s files differ from their `records`, in words; None when they do not."""
    if not records:  # written before caches recorded their files: nothing to check them by
        return f"was written by an older tinylm, whose {META} records no file sizes"
    for name, record in records.items():
        path = folder / name
        try:
            size = path.stat().st_size
        except OSError:
            return f"lacks its {name}"
        if size != record["bytes"]:
            return f"holds a {name} of {size:,} bytes where {META} records {record['bytes']:,}"
        if file_digest(path) != record["sha256"]:
            return f"holds a {name} that changed since it was written"
    return None


def file_digest(path: Path) -> str:
    """sha256 of the file, or of its size and DIGEST_BLOCKS evenly spread blocks when large."""
    digest = hashlib.sha256()
    size = path.stat().st_size
    if size <= WHOLE_DIGEST_BYTES:
        offsets, block_bytes = range(0, size, DIGEST_BLOCK_BYTES), DIGEST_BLOCK_BYTES
    else:
        digest.update(str(size).encode())
        stride = (size - DIGEST_BLOCK_BYTES) // (DIGEST_BLOCKS - 1)
        offsets, block_bytes = range(0, DIGEST_BLOCKS * stride, stride), DIGEST_BLOCK_BYTES
    with open(path, "rb") as handle:
        for offset in offsets:
            handle.seek(offset)
            digest.update(handle.read(block_bytes))
    return digest.hexdigest()


def remove_leftovers(folder: Path) -> None:
    """Delete what killed builds left behind (only ever called while holding the lock)."""
    for leftover in folder.parent.glob(f".{folder.name}.partial-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    if folder.exists():  # a folder whose meta.json does not match: not ours to trust
        shutil.rmtree(folder)


def write_split(
    path: Path, pieces: Iterable[tuple[str, bool]], tokenizer: Tokenizer, description: str
) -> TokenizationStats:
    """Tokenize a stream of (text, ends_document) pieces into the flat token file `path`."""
    stats = TokenizationStats()
    with TokenWriter(path, token_dtype(tokenizer.vocab_size)) as writer:
        tagged = ((text, ends, None) for text, ends in pieces)
        for ids, _ in tokenize_stream(tagged, tokenizer, stats, description):
            writer.write(ids)
    log.info("%s: %s", description, stats.summary())
    return stats
