"""Writing files that other runs and tools read."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def append_jsonl(path: Path, records: list[dict]) -> None:
    """Add records to the end of `path`: earlier runs' records are kept."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text` in one step: written beside it, flushed to disk, then renamed
    over it, so that a reader (or a crash) never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def keep_records_before(path: Path, step: int) -> None:
    """Drop the JSON lines of `path` whose "step" is `step` or later: what a resumed run logs
    again (a crashed run wrote them after the checkpoint it resumes from)."""
    if not path.is_file():
        return
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [line for line in lines if json.loads(line).get("step", step) < step]
    if len(kept) < len(lines):
        write_atomically(path, "".join(kept))
