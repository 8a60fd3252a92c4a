import json
import os
import time

import fsspec
import pytest

from tinylm.data.shard_cache import ShardCache
from tinylm.errors import DataError

LOCAL = fsspec.filesystem("file")


@pytest.fixture
def shards(tmp_path):
    """Three 'shards' of 1,000 bytes each (any file will do for the cache)."""
    folder = tmp_path / "remote"
    folder.mkdir()
    for name in "abc":
        (folder / f"{name}.parquet").write_bytes(os.urandom(1000))
    return folder


def fetch(cache: ShardCache, shards, name: str) -> None:
    # open() returns a ParquetFile; these bytes are not parquet, so only fetching is tested here.
    metadata = cache.read_metadata()
    if name not in metadata["shards"]:
        cache.fetch(LOCAL, str(shards / name), cache.folder / name, metadata)
    metadata["shards"][name]["last_used"] = time.time()
    cache.write_metadata(metadata)


def cached(cache: ShardCache) -> list[str]:
    return sorted(p.name for p in cache.folder.iterdir() if p.suffix == ".parquet")


def test_least_recently_used_shards_are_evicted_to_stay_under_budget(tmp_path, shards):
    cache = ShardCache(tmp_path / "cache", max_bytes=2500)
    fetch(cache, shards, "a.parquet")
    fetch(cache, shards, "b.parquet")
    fetch(cache, shards, "a.parquet")  # a is now the most recently used
    fetch(cache, shards, "c.parquet")
    assert cached(cache) == ["a.parquet", "c.parquet"]
    metadata = json.loads((cache.folder / "cache_metadata.json").read_text())
    assert set(metadata["shards"]) == {"a.parquet", "c.parquet"}
    assert metadata["used_bytes"] == 2000 <= metadata["max_bytes"] == 2500
    assert (cache.folder / "c.parquet").read_bytes() == (shards / "c.parquet").read_bytes()


def test_a_shard_larger_than_the_budget_is_a_clear_error(tmp_path, shards):
    cache = ShardCache(tmp_path / "cache", max_bytes=999)
    with pytest.raises(DataError, match="raise data.cache_max_gb"):
        fetch(cache, shards, "a.parquet")
    assert cached(cache) == []


def test_leftovers_of_a_killed_download_are_removed_and_never_trusted(tmp_path, shards):
    cache = ShardCache(tmp_path / "cache", max_bytes=2500)
    (cache.folder / ".b.parquet.partial-12345").write_bytes(b"half a shard")
    (cache.folder / "a.parquet").write_bytes(b"truncated")  # not in the metadata
    fetch(cache, shards, "a.parquet")
    assert cached(cache) == ["a.parquet"]
    assert not list(cache.folder.glob("*.partial-*"))
    assert (cache.folder / "a.parquet").read_bytes() == (shards / "a.parquet").read_bytes()
