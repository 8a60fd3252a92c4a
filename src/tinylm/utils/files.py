"""Writing files that other runs and tools read."""

from __future__ import annotations

import json
from pathlib import Path


def append_jsonl(path: Path, records: list[dict]) -> None:
    """Add records to the end of `path`: earlier runs' records are kept."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
