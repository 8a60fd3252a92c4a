"""Writing files that other runs and tools read, so that a reader never sees half a file.

Every file is written to a temporary name in its own folder, flushed and fsynced, then renamed
over its real name (and the folder fsynced, so that the rename itself survives a power cut).
A rename within one file system is atomic: the real name holds either the old file, whole,
or the new one, whole — never a partial one — whatever stops the writer (a full disk, a kill,
a crash). The temporary file must be in the same folder: a rename across file systems is a
copy, which can be cut short.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO

from tinylm.errors import WriteError

RUN_FOLDER_KEY = "paths.output_dir"  # the setting that chooses where a run's files go


@contextmanager
def atomic_write(
    path: str | Path, mode: str = "w", folder_key: str = RUN_FOLDER_KEY, **open_kwargs
) -> Iterator[IO]:
    """Open a temporary file beside `path` for writing; when the block ends without an error
    it replaces `path`. On any error the temporary file is removed and `path` is as it was; an
    OSError (a full disk, a read-only folder) becomes a WriteError whose sentence names the file
    and `folder_key`, the setting that puts it elsewhere."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # "x": created here, with the permissions the umask gives (mkstemp's are owner-only).
        with open(temporary, mode.replace("w", "x"), **open_kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        fsync_folder(path.parent)
    except BaseException as error:
        with suppress(OSError):  # never created, or the folder is unusable: nothing to remove
            temporary.unlink()
        if isinstance(error, OSError):
            raise write_error(error, path, folder_key) from error
        raise


def write_error(error: OSError, path: Path, folder_key: str) -> WriteError:
    """The sentence for `error` while writing `path`: what happened, and what to do about it."""
    reason = error.strerror or str(error)
    if error.errno in (errno.EEXIST, errno.ENOTDIR):
        named = Path(error.filename) if error.filename else path
        where = next((p for p in (named, *named.parents) if p.is_file()), named)
        return WriteError(
            f"{where} is a file where a folder should be (saving {path}): move it away or point "
            f"{folder_key} elsewhere."
        )
    if error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        action = "make it writable or "
    elif error.errno in (errno.ENOSPC, errno.EDQUOT):
        action = "free space or "
    else:  # a folder that cannot be made there at all (under /proc, a missing drive)
        action = ""
    return WriteError(f"{reason} while saving {path}: {action}point {folder_key} elsewhere.")


def fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_atomically(path: str | Path, text: str, folder_key: str = RUN_FOLDER_KEY) -> None:
    """Replace `path` with `text`, atomically."""
    with atomic_write(path, "w", folder_key, encoding="utf-8", newline="") as handle:
        handle.write(text)


def append_jsonl(path: Path, records: list[dict], folder_key: str = RUN_FOLDER_KEY) -> None:
    """Add records to the end of `path`, earlier records kept. The file is copied with the new
    lines to a temporary file that then replaces it, so an append cannot leave half a line."""
    lines = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    with atomic_write(path, "wb", folder_key) as handle:
        if path.is_file():
            with open(path, "rb") as existing:
                shutil.copyfileobj(existing, handle)
        handle.write(lines.encode("utf-8"))


def keep_records_before(path: Path, step: int) -> None:
    """Drop the JSON lines of `path` whose "step" is `step` or later."""
    if not path.is_file():
        return
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [line for line in lines if json.loads(line).get("step", step) < step]
    if len(kept) < len(lines):
        write_atomically(path, "".join(kept))


def keep_csv_rows_before(path: Path, step: int) -> None:
    """Drop the rows of the CSV file `path` whose "step" column is `step` or later."""
    if not path.is_file():
        return
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
        fieldnames = reader.fieldnames or []
    kept = [row for row in rows if int(row["step"]) < step]
    if len(kept) < len(rows):
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=fieldnames)
        writer.writeheader()
        writer.writerows(kept)
        write_atomically(path, text.getvalue())
