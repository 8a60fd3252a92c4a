import json
import multiprocessing
import os
import time
from pathlib import Path

import numpy as np
import pytest

from tinylm.data import TextDataModule
from tinylm.data.token_cache import TokenWriter, load_or_build, token_dtype
from tinylm.errors import TokenizerError, WriteError
from tinylm.tokenizers import CharTokenizer, saved_tokenizer_spec

FORK = multiprocessing.get_context("fork")


def text_datamodule(path, cache_dir, **overrides) -> TextDataModule:
    settings = dict(
        path=str(path),
        tokenizer={"kind": "char"},
        block_size=8,
        batch_size=2,
        cache_dir=str(cache_dir),
        val_fraction=0.1,
    )
    return TextDataModule(**{**settings, **overrides})


def test_the_cache_holds_every_token_with_eos_after_each_document(tmp_path):
    docs = ["the cat sat.", "a dog ran far away.", "fin"]
    path = tmp_path / "docs.txt"
    path.write_text("\n<|endoftext|>\n".join(docs))
    dm = text_datamodule(path, tmp_path / "cache", val_fraction=0.2, block_size=4)
    dm.setup()
    tokenizer = dm.tokenizer
    expected = []
    for doc in docs:
        expected += [*tokenizer.encode(doc), tokenizer.eos_id]
    stored = np.concatenate([dm.cache.tokens("train"), dm.cache.tokens("val")])
    assert stored.tolist() == expected
    n_val = int(np.ceil(len(expected) * 0.2))
    assert len(dm.cache.tokens("val")) == n_val  # the last 20% of the stream
    assert dm.cache.meta["documents"] == 3 and dm.cache.meta["dtype"] == "uint16"


def test_a_second_run_reuses_the_cache_without_tokenizing(tmp_path, story_file, monkeypatch):
    first = text_datamodule(story_file, tmp_path / "cache")
    first.setup()
    built_at = (first.cache.folder / "meta.json").stat().st_mtime_ns

    def must_not_build(self, folder):
        raise AssertionError("the cache was rebuilt")

    monkeypatch.setattr(TextDataModule, "build", must_not_build)
    second = text_datamodule(story_file, tmp_path / "cache")
    second.setup()
    assert second.cache.folder == first.cache.folder
    assert (second.cache.folder / "meta.json").stat().st_mtime_ns == built_at


@pytest.mark.parametrize(
    "change",
    ["edit the file", "another tokenizer", "another val_fraction"],
)
def test_a_changed_fingerprint_builds_a_new_cache(tmp_path, story_file, change):
    first = text_datamodule(story_file, tmp_path / "cache")
    first.setup()
    overrides = {}
    if change == "edit the file":
        story_file.write_text(story_file.read_text() + "A new story about a zebra.\n")
    elif change == "another tokenizer":
        overrides["tokenizer"] = {"kind": "tiktoken", "encoding": "gpt2"}
    else:
        overrides["val_fraction"] = 0.2
    second = text_datamodule(story_file, tmp_path / "cache", **overrides)
    second.setup()
    assert second.cache.folder != first.cache.folder
    tokens = np.concatenate([second.cache.tokens("train"), second.cache.tokens("val")])
    if change == "edit the file":
        assert "zebra" in second.tokenizer.decode(tokens.tolist())


def fake_build(folder: Path, tokens=(1, 2, 3, 4, 5)) -> tuple:
    tokenizer = CharTokenizer("abcde")
    with TokenWriter(folder / "train.bin", token_dtype(tokenizer.vocab_size)) as writer:
        writer.write(tokens)
    with TokenWriter(folder / "val.bin", token_dtype(tokenizer.vocab_size)) as writer:
        writer.write(tokens)
    return tokenizer, {"splits": {"train": {"tokens": len(tokens)}}}


def test_an_interrupted_build_leaves_no_cache_and_the_next_run_builds_it(tmp_path):
    def interrupted(folder):
        fake_build(folder)
        raise KeyboardInterrupt  # Ctrl-C after the token files were written

    with pytest.raises(KeyboardInterrupt):
        load_or_build(tmp_path, "t", {"x": 1}, interrupted)
    assert all(p.suffix == ".lock" for p in tmp_path.iterdir())  # no cache, no partial folder
    cache = load_or_build(tmp_path, "t", {"x": 1}, fake_build)
    assert cache.tokens("train").tolist() == [1, 2, 3, 4, 5]


def slow_build_then_killed(cache_dir: Path) -> None:
    def slow(folder):
        (folder / "train.bin").write_bytes(b"\x01\x00" * 3)
        time.sleep(60)

    load_or_build(cache_dir, "t", {"x": 1}, slow)


def test_a_killed_build_is_never_trusted_and_its_leftovers_are_removed(tmp_path):
    process = FORK.Process(target=slow_build_then_killed, args=(tmp_path,))
    process.start()
    deadline = time.time() + 30
    while not list(tmp_path.glob(".t-*.partial-*/train.bin")) and time.time() < deadline:
        time.sleep(0.05)
    process.kill()  # SIGKILL: no cleanup code runs
    process.join()
    assert list(tmp_path.glob(".t-*.partial-*"))  # what the killed build left
    assert not [p for p in tmp_path.glob("t-*") if p.suffix != ".lock"]  # but no cache
    cache = load_or_build(tmp_path, "t", {"x": 1}, fake_build)
    assert cache.tokens("train").tolist() == [1, 2, 3, 4, 5]
    assert not list(tmp_path.glob(".t-*.partial-*"))


def counting_build(folder: Path) -> tuple:
    with open(folder.parent / "builds.log", "a") as log:
        log.write(f"{os.getpid()}\n")
    time.sleep(0.5)  # long enough for the other process to arrive while this one builds
    return fake_build(folder)


def prepare_in_process(cache_dir: Path, results) -> None:
    cache = load_or_build(cache_dir, "t", {"x": 1}, counting_build)
    results.put((str(cache.folder), cache.tokens("train").tolist()))


def test_concurrent_preparation_builds_once_and_all_see_one_valid_cache(tmp_path):
    results = FORK.Queue()
    processes = [
        FORK.Process(target=prepare_in_process, args=(tmp_path, results)) for _ in range(3)
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=60) for _ in processes]
    for process in processes:
        process.join()
        assert process.exitcode == 0
    assert len((tmp_path / "builds.log").read_text().split()) == 1
    assert len(set(folder for folder, _ in outcomes)) == 1
    assert all(tokens == [1, 2, 3, 4, 5] for _, tokens in outcomes)


def test_vocabularies_over_65535_are_stored_as_uint32(tmp_path):
    # A character vocabulary of 70,000 code points (surrogates skipped) needs 32-bit ids.
    chars = [chr(c) for c in range(0x4E00, 0x4E00 + 80_000) if not 0xD800 <= c <= 0xDFFF]
    text = "".join(chars[:70_000])
    path = tmp_path / "wide.txt"
    path.write_text(text * 2)
    dm = text_datamodule(path, tmp_path / "cache")
    dm.setup()
    assert dm.tokenizer.vocab_size == 70_001
    assert dm.cache.meta["dtype"] == "uint32"
    stored = np.concatenate([dm.cache.tokens("train"), dm.cache.tokens("val")])
    assert stored.max() > 65_535
    assert dm.tokenizer.decode(stored[:-1].tolist()) == text * 2
    assert token_dtype(65_535) == np.uint16 and token_dtype(65_536) == np.uint32


def test_a_saved_tokenizer_encodes_new_data_with_its_own_ids(tmp_path, story_file):
    trained = text_datamodule(story_file, tmp_path / "cache")
    trained.setup()
    other = tmp_path / "other.txt"
    other.write_text("Tom had a cat. " * 20)
    reused = text_datamodule(
        other, tmp_path / "cache", tokenizer=saved_tokenizer_spec(trained.tokenizer)
    )
    reused.setup()
    assert reused.tokenizer.state_dict() == trained.tokenizer.state_dict()
    assert reused.cache.tokens("train")[:4].tolist() == trained.tokenizer.encode("Tom ")
    assert "state_sha256" in json.dumps(reused.cache.meta["fingerprint"])  # not the whole state

    unseen = tmp_path / "unseen.txt"
    unseen.write_text("Zoë " * 20)
    with pytest.raises(TokenizerError, match="never saw"):
        text_datamodule(unseen, tmp_path / "cache",
                        tokenizer=saved_tokenizer_spec(trained.tokenizer)).setup()  # fmt: skip


def damage_train_bin_truncated(folder: Path) -> None:
    path = folder / "train.bin"
    path.write_bytes(path.read_bytes()[:100])


def damage_train_bin_overwritten(folder: Path) -> None:
    path = folder / "train.bin"
    path.write_bytes(bytes(path.stat().st_size))  # the same size, other bytes


def damage_val_bin_deleted(folder: Path) -> None:
    (folder / "val.bin").unlink()


def damage_tokenizer_edited(folder: Path) -> None:
    path = folder / "tokenizer.json"
    state = json.loads(path.read_text())
    state["chars"] = state["chars"][::-1]  # the same characters, other ids
    path.write_text(json.dumps(state))


DAMAGES = {
    "train.bin truncated": (damage_train_bin_truncated, "holds a train.bin of 100 bytes where"),
    "train.bin overwritten": (damage_train_bin_overwritten, "a train.bin that changed"),
    "val.bin deleted": (damage_val_bin_deleted, "lacks its val.bin"),
    "tokenizer.json edited": (damage_tokenizer_edited, "a tokenizer.json that changed"),
}


@pytest.mark.parametrize("damage", DAMAGES, ids=list(DAMAGES))
def test_a_cache_changed_since_it_was_written_is_rebuilt_not_read(
    tmp_path, story_file, damage, caplog
):
    first = text_datamodule(story_file, tmp_path / "cache")
    first.setup()
    tokens = {split: first.cache.tokens(split).tolist() for split in ("train", "val")}
    state = first.tokenizer.state_dict()
    damage_files, said = DAMAGES[damage]
    damage_files(first.cache.folder)

    second = text_datamodule(story_file, tmp_path / "cache")
    second.setup()
    assert f"The tokenized cache {first.cache.folder} " in caplog.text and said in caplog.text
    assert second.cache.folder == first.cache.folder
    assert {split: second.cache.tokens(split).tolist() for split in tokens} == tokens
    assert second.tokenizer.state_dict() == state


def test_a_cache_without_recorded_files_is_rebuilt(tmp_path, story_file, caplog):
    first = text_datamodule(story_file, tmp_path / "cache")
    first.setup()
    meta_path = first.cache.folder / "meta.json"
    meta = json.loads(meta_path.read_text())
    del meta["files"]  # as tinylm wrote caches before they were verified
    meta_path.write_text(json.dumps(meta))
    text_datamodule(story_file, tmp_path / "cache").setup()
    assert "whose meta.json records no file sizes: tokenizing again" in caplog.text
    assert "files" in json.loads(meta_path.read_text())


def test_a_changed_cache_on_a_read_only_disk_is_one_sentence_and_stays_as_it_was(
    tmp_path, story_file, small_filesystem
):
    disk = small_filesystem(16 << 20)
    first = text_datamodule(story_file, disk / "cache")
    first.setup()
    damage_train_bin_truncated(first.cache.folder)
    before = {p.name: p.read_bytes() for p in first.cache.folder.iterdir()}
    small_filesystem.read_only()
    with pytest.raises(WriteError) as error:
        text_datamodule(story_file, disk / "cache").setup()
    assert str(error.value).startswith("Read-only file system while saving ")
    assert str(error.value).endswith(": make it writable or point paths.cache_dir elsewhere.")
    assert {p.name: p.read_bytes() for p in first.cache.folder.iterdir()} == before


def test_a_full_disk_while_tokenizing_is_one_sentence_and_leaves_no_partial_cache(
    tmp_path, small_filesystem
):
    disk = small_filesystem(256 << 10)
    small = tmp_path / "small.txt"
    small.write_text("a small story. " * 100)
    earlier = text_datamodule(small, disk / "cache")
    earlier.setup()
    before = {p.name: p.read_bytes() for p in earlier.cache.folder.iterdir()}
    large = tmp_path / "large.txt"  # 300,000 characters: 600 KB of uint16 ids
    large.write_text("a larger story about a cat. " * 11_000)
    with pytest.raises(WriteError) as error:
        text_datamodule(large, disk / "cache").setup()
    assert str(error.value).startswith(f"No space left on device while saving {disk / 'cache'}")
    assert str(error.value).endswith(": free space or point paths.cache_dir elsewhere.")
    assert [p.name for p in (disk / "cache").iterdir() if not p.name.endswith(".lock")] == [
        earlier.cache.folder.name
    ]
    assert {p.name: p.read_bytes() for p in earlier.cache.folder.iterdir()} == before


def test_a_cache_dir_that_is_a_file_is_one_sentence(tmp_path, story_file):
    blocker = tmp_path / "cache"
    blocker.write_text("not a folder")
    with pytest.raises(WriteError) as error:
        text_datamodule(story_file, blocker / "nested").setup()
    assert str(error.value).startswith(f"{blocker} is a file where a folder should be")
    assert blocker.read_text() == "not a folder"
