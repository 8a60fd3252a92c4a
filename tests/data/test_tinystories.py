"""TinyStories read from a local folder laid out like the hub repository, through the same
`datasets.load_dataset` call a download uses."""

import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.conftest import write_tinystories_repo
from tinylm.data import TinyStoriesDataModule
from tinylm.errors import DataError
from tinylm.tokenizers import EOS_TEXT, build_tokenizer


def tinystories(tmp_path, repo, **overrides) -> TinyStoriesDataModule:
    settings = dict(
        path=str(repo),
        tokenizer={"kind": "tiktoken", "encoding": "gpt2"},
        block_size=16,
        batch_size=4,
        cache_dir=str(tmp_path / "cache"),
        hf_cache_dir=str(tmp_path / "hf"),
    )
    return TinyStoriesDataModule(**{**settings, **overrides})


def expected_tokens(tokenizer, stories):
    return [t for story in stories for t in [*tokenizer.encode(story), tokenizer.eos_id]]


@pytest.fixture
def repo(tmp_path):
    return write_tinystories_repo(tmp_path / "TinyStories")


def test_v1_splits_hold_every_story_once_with_eos_after_each(tmp_path, repo):
    dm = tinystories(tmp_path, repo)
    dm.setup()
    gpt2 = build_tokenizer({"kind": "tiktoken", "encoding": "gpt2"}, training_text=None)
    shards = sorted((repo / "data").glob("train-*"))
    train = [text for shard in shards for text in pq.read_table(shard)["text"].to_pylist()]
    val = pq.read_table(repo / "data" / "validation-00000-of-00001.parquet")["text"].to_pylist()
    assert dm.cache.tokens("train").tolist() == expected_tokens(gpt2, train)
    assert dm.cache.tokens("val").tolist() == expected_tokens(gpt2, val)
    assert dm.cache.meta["splits"]["train"]["documents"] == 300
    assert dm.cache.meta["splits"]["val"]["documents"] == 40


def test_v2_stories_are_rebuilt_from_the_text_files(tmp_path, repo):
    dm = tinystories(tmp_path, repo, variant="v2", tokenizer={"kind": "char"})
    dm.setup()
    text = dm.tokenizer.decode(dm.cache.tokens("train").tolist())
    stories = text.split(EOS_TEXT)[:-1]
    assert len(stories) == 300
    assert (
        stories[0]
        == (repo / "TinyStoriesV2-GPT4-train.txt").read_text().split(f"\n{EOS_TEXT}\n")[0]
    )


def test_a_subset_takes_the_first_stories(tmp_path, repo):
    dm = tinystories(tmp_path, repo, max_train_docs=10, max_val_docs=5)
    dm.setup()
    assert dm.cache.meta["splits"]["train"]["documents"] == 10
    assert dm.cache.meta["splits"]["val"]["documents"] == 5
    full = tinystories(tmp_path, repo)
    full.setup()
    n = len(dm.cache.tokens("train"))
    assert np.array_equal(full.cache.tokens("train")[:n], dm.cache.tokens("train"))


def test_a_second_start_reuses_the_cache_without_touching_the_dataset(tmp_path, repo, monkeypatch):
    first = tinystories(tmp_path, repo)
    first.setup()
    monkeypatch.setattr(
        TinyStoriesDataModule, "load_split", lambda *a: pytest.fail("the dataset was loaded")
    )
    second = tinystories(tmp_path, repo)
    second.setup()
    assert second.cache.folder == first.cache.folder


def test_the_fingerprint_names_dataset_variant_subset_and_tokenizer(tmp_path, repo):
    base = tinystories(tmp_path, repo).fingerprint()
    assert tinystories(tmp_path, repo, variant="v2").fingerprint() != base
    assert tinystories(tmp_path, repo, max_train_docs=5).fingerprint() != base
    assert tinystories(tmp_path, repo, tokenizer={"kind": "char"}).fingerprint() != base
    hub = tinystories(tmp_path, "roneneldan/TinyStories", revision="abc123").fingerprint()
    assert hub["source"]["revision"] == "abc123" and "files" not in hub["source"]


def test_an_unreachable_hub_is_one_sentence_and_leaves_no_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("datasets.config.HF_HUB_OFFLINE", True)
    dm = tinystories(tmp_path, "roneneldan/TinyStories")
    with pytest.raises(DataError, match=r"Could not download 'roneneldan/TinyStories'.*data=text"):
        dm.setup()
    assert [p.suffix for p in (tmp_path / "cache").iterdir()] == [".lock"]
