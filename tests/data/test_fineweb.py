"""FineWeb read from a local folder laid out like the hub repository, through the same fsspec
and shard-cache code a download uses."""

import itertools

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from tests.conftest import write_fineweb_repo
from tinylm.data import FineWebDataModule
from tinylm.data.fineweb import is_validation, subset_folder
from tinylm.data.shard_cache import ShardCache
from tinylm.errors import DataError
from tinylm.tokenizers import build_tokenizer

GPT2 = {"kind": "tiktoken", "encoding": "gpt2"}
ROWS = 60


@pytest.fixture
def repo(tmp_path):
    return write_fineweb_repo(tmp_path / "fineweb", shards=4, rows=ROWS)


def fineweb(tmp_path, repo, cache="cache", **overrides) -> FineWebDataModule:
    settings = dict(
        path=str(repo),
        tokenizer=GPT2,
        block_size=16,
        batch_size=4,
        cache_dir=str(tmp_path / cache),
        val_fraction=0.2,
        tokens_per_epoch=1500,
        cache_max_gb=1e-9 * shard_bytes(repo) * 2.5,  # room for two and a half shards
    )
    return FineWebDataModule(**{**settings, **overrides})


def shard_bytes(repo) -> int:
    return max(p.stat().st_size for p in (repo / "sample" / "10BT").glob("*.parquet"))


def documents(repo):
    """Every (id, text) of the repository in stream order."""
    for path in sorted((repo / "sample" / "10BT").glob("*.parquet")):
        table = pq.read_table(path)
        yield from zip(table["id"].to_pylist(), table["text"].to_pylist(), strict=True)


def test_epochs_cover_the_stream_in_order_with_disjoint_splits(tmp_path, repo):
    dm = fineweb(tmp_path, repo)
    dm.setup()
    gpt2 = build_tokenizer(GPT2, training_text=None)
    docs = list(documents(repo))
    val_docs = [text for doc_id, text in docs if is_validation(doc_id, 0.2)]
    train_docs = [text for doc_id, text in docs if not is_validation(doc_id, 0.2)]
    assert 0 < len(val_docs) < len(train_docs)

    stream = [t for text in train_docs for t in [*gpt2.encode(text), gpt2.eos_id]]
    epochs = [dm.epoch_cache(e) for e in range(6)]
    ends = [e.meta["end"] for e in epochs]
    exhausted = ends.index(None)  # the 4 shards hold about 4 epochs of 1,500 tokens
    tokens = np.concatenate([e.tokens("train") for e in epochs[: exhausted + 1]]).tolist()
    assert tokens == stream  # every training document once, in order, then nothing else
    assert all(len(e.tokens("train")) >= 1500 for e in epochs[:exhausted])
    for before, after in itertools.pairwise(epochs[: exhausted + 1]):
        assert after.meta["start"] == before.meta["end"]
    # After the stream runs out, epochs start over.
    assert dm.epoch_cache(exhausted + 1).folder == epochs[0].folder

    # Validation: the hashed-out documents met during epoch 0, never in a training epoch.
    val_tokens = dm.cache.tokens("val").tolist()
    expected_val = [t for text in val_docs for t in [*gpt2.encode(text), gpt2.eos_id]]
    assert val_tokens == expected_val[: len(val_tokens)] and len(val_tokens) > 0


def test_the_split_and_the_epochs_are_the_same_on_every_build(tmp_path, repo):
    first, second = fineweb(tmp_path, repo, cache="one"), fineweb(tmp_path, repo, cache="two")
    first.setup()
    second.setup()
    for epoch in range(3):
        a, b = first.epoch_cache(epoch), second.epoch_cache(epoch)
        assert np.array_equal(a.tokens("train"), b.tokens("train"))
    assert np.array_equal(first.cache.tokens("val"), second.cache.tokens("val"))
    assert is_validation("<urn:uuid:x>", 0.2) == is_validation("<urn:uuid:x>", 0.2)


def test_the_shard_cache_stays_under_budget_while_streaming_more_than_fits(
    tmp_path, repo, monkeypatch
):
    sizes = []
    fetch = ShardCache.fetch

    def measured_fetch(self, *args):
        fetch(self, *args)
        sizes.append(sum(p.stat().st_size for p in self.folder.glob("*.parquet")))

    monkeypatch.setattr(ShardCache, "fetch", measured_fetch)
    # Tokenize in small batches, as real shards of GBs are relative to the 8 MB batches; else
    # one batch would read ahead through every test shard.
    monkeypatch.setattr("tinylm.data.token_cache.BATCH_CHARS", 2000)
    dm = fineweb(tmp_path, repo)
    dm.setup()
    dm.prepare_ahead(5)  # reads all 4 shards; only 2 fit
    budget = dm.shard_cache.max_bytes
    assert len(sizes) == 4 and max(sizes) <= budget < 4 * shard_bytes(repo)
    assert len(dm.shard_cache.read_metadata()["shards"]) == 2


def test_a_resumed_stream_serves_the_batches_of_an_uninterrupted_one(tmp_path, repo):
    dm = fineweb(tmp_path, repo)
    dm.setup()
    whole = list(itertools.islice(iter(dm.train_dataloader()), 40))
    dm.train_batches_consumed = 25  # as a checkpoint taken after 25 batches restores it
    resumed = list(itertools.islice(iter(dm.train_dataloader()), 15))
    for (x1, y1), (x2, y2) in zip(whole[25:], resumed, strict=True):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)
    # 1,500 tokens per epoch / 64 tokens per step: the 40 steps span two epochs.
    assert dm.epoch_cache(1).folder.exists()


def test_bad_settings_are_clear_errors(tmp_path, repo):
    with pytest.raises(DataError, match="tokenizer=char cannot be used with data=fineweb"):
        fineweb(tmp_path, repo, tokenizer={"kind": "char"})
    with pytest.raises(DataError, match="check data.subset"):
        fineweb(tmp_path, repo, subset="sample-100BT").setup()


def test_subset_names_map_to_repository_folders():
    assert subset_folder("sample-10BT") == "sample/10BT"
    assert subset_folder("CC-MAIN-2024-10") == "data/CC-MAIN-2024-10"
    assert subset_folder("sample/350BT") == "sample/350BT"
