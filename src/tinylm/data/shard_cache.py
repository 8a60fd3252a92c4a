"""Parquet shards fetched on demand into a folder that never holds more than its budget.

Shards are downloaded one at a time (to a temporary name, then renamed). Before a download, the
least recently used shards are evicted until the new one fits; `cache_metadata.json` records
which shards are present, their sizes and when each was last used. A file lock serialises
fetches across processes, and a shard is returned already opened, so a later eviction by
another process cannot pull it away from its reader (an open file outlives its unlinking).
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import pyarrow.parquet as pq
from filelock import FileLock
from fsspec import AbstractFileSystem
from fsspec.callbacks import TqdmCallback

from tinylm.errors import DataError

log = logging.getLogger(__name__)
METADATA = "cache_metadata.json"


class ShardCache:
    def __init__(self, folder: str | Path, max_bytes: int) -> None:
        self.folder = Path(folder).expanduser()
        self.max_bytes = max_bytes
        self.folder.mkdir(parents=True, exist_ok=True)
        self.lock = FileLock(str(self.folder / ".lock"))

    def open(self, fs: AbstractFileSystem, remote: str, name: str) -> pq.ParquetFile:
        """The shard `remote` of filesystem `fs`, stored as `name`, opened for reading."""
        with self.lock:
            metadata = self.read_metadata()
            local = self.folder / name
            if name not in metadata["shards"] or not local.is_file():
                self.fetch(fs, remote, local, metadata)
            metadata["shards"][name]["last_used"] = time.time()
            self.write_metadata(metadata)
            return pq.ParquetFile(local)

    def fetch(self, fs: AbstractFileSystem, remote: str, local: Path, metadata: dict) -> None:
        size = fs.info(remote)["size"]
        if size > self.max_bytes:
            raise DataError(
                f"The shard {remote} is {size / 1e9:.2f} GB, more than the shard cache's budget "
                f"(data.cache_max_gb = {self.max_bytes / 1e9:g}); raise data.cache_max_gb."
            )
        self.remove_leftovers(metadata)
        self.evict_until_free(size, metadata)
        partial = local.with_name(f".{local.name}.partial-{os.getpid()}")
        log.info("Fetching %s (%.2f GB)", remote, size / 1e9)
        try:
            fs.get_file(remote, str(partial), callback=TqdmCallback(tqdm_kwargs={"unit": "B"}))
            os.replace(partial, local)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        metadata["shards"][local.name] = {"bytes": size, "source": remote}

    def evict_until_free(self, needed: int, metadata: dict) -> None:
        shards = metadata["shards"]
        while shards and self.used_bytes(metadata) + needed > self.max_bytes:
            oldest = min(shards, key=lambda name: shards[name].get("last_used", 0.0))
            log.info("Evicting %s from the shard cache", oldest)
            (self.folder / oldest).unlink(missing_ok=True)
            del shards[oldest]

    def remove_leftovers(self, metadata: dict) -> None:
        """Partial downloads of killed processes, and files the metadata does not know."""
        for path in self.folder.iterdir():
            if path.name not in (METADATA, ".lock") and path.name not in metadata["shards"]:
                path.unlink(missing_ok=True)

    def used_bytes(self, metadata: dict) -> int:
        return sum(entry["bytes"] for entry in metadata["shards"].values())

    def read_metadata(self) -> dict:
        try:
            metadata = json.loads((self.folder / METADATA).read_text())
        except (OSError, json.JSONDecodeError):
            metadata = {"shards": {}}
        # Trust only entries whose file is really there with the recorded size.
        metadata["shards"] = {
            name: entry
            for name, entry in metadata["shards"].items()
            if (self.folder / name).is_file()
            and (self.folder / name).stat().st_size == entry["bytes"]
        }
        return metadata

    def write_metadata(self, metadata: dict) -> None:
        metadata["max_bytes"] = self.max_bytes
        metadata["used_bytes"] = self.used_bytes(metadata)
        temporary = self.folder / f".{METADATA}.partial-{os.getpid()}"
        temporary.write_text(json.dumps(metadata, indent=2))
        os.replace(temporary, self.folder / METADATA)
