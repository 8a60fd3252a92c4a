"""Hub-layout datasets end to end: prepared ahead by the script, trained on, resumed."""

import pytest
import torch

from tests.conftest import compose_train, run_script, write_fineweb_repo, write_tinystories_repo
from tinylm.tokenizers import tokenizer_from_state
from tinylm.training import fit


@pytest.mark.slow
def test_prepared_data_is_found_by_an_offline_training_run(tmp_path, monkeypatch):
    repo = write_tinystories_repo(tmp_path / "TinyStories")
    data = (f"data.path={repo}", f"data.hf_cache_dir={tmp_path / 'hf'}",
            f"paths.cache_dir={tmp_path / 'cache'}", f"paths.log_dir={tmp_path / 'out'}",
            "data=tinystories", "tokenizer=bpe", "tokenizer.vocab_size=300")  # fmt: skip
    prepared = run_script("prepare_data", *data, cwd=tmp_path)
    assert prepared.returncode == 0, prepared.stderr
    assert "Ready:" in prepared.stderr and "tinystories-" in prepared.stderr

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    trained = run_script("train", *data, "model=tiny", "trainer.max_steps=5",
                         "callbacks.progress_bar=null", cwd=tmp_path)  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    assert "Tokenizing" not in trained.stderr + trained.stderr  # the cache was found as it was
    assert "val/loss: final" in trained.stderr


def test_a_bpe_trained_on_tinystories_travels_in_the_checkpoint(tmp_path):
    repo = write_tinystories_repo(tmp_path / "TinyStories")
    cfg = compose_train(
        tmp_path, "model=tiny", "data=tinystories", f"data.path={repo}",
        f"data.hf_cache_dir={tmp_path / 'hf'}", "tokenizer=bpe", "tokenizer.vocab_size=300",
        "trainer.max_steps=60", "trainer.val_check_interval=30", "optimizer.lr=3e-3",
    )  # fmt: skip
    fit(cfg)
    checkpoint = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    tokenizer = tokenizer_from_state(checkpoint["hyper_parameters"]["tokenizer_state"])
    (cache,) = (tmp_path / "cache").glob("tinystories-*[!k]")  # the folder, not its .lock
    assert tokenizer.vocab_size == checkpoint["hyper_parameters"]["model_config"]["vocab_size"]
    story = "Once upon a time, Mia had a frog."
    assert tokenizer.decode(tokenizer.encode(story)) == story
    cached = tokenizer_from_state(__import__("json").loads((cache / "tokenizer.json").read_text()))
    assert cached.encode(story) == tokenizer.encode(story)


def test_a_fineweb_run_resumed_mid_stream_ends_like_an_uninterrupted_one(tmp_path):
    repo = write_fineweb_repo(tmp_path / "fineweb", shards=3, rows=80)
    # 16 × 32 tokens per step and 2,000 tokens per epoch: a new epoch every 3 steps.
    common = ("model=tiny", "data=fineweb", f"data.path={repo}", "data.tokens_per_epoch=2000",
              "data.val_fraction=0.2", "model.block_size=32", "trainer.max_steps=12",
              "trainer.val_check_interval=1000", "optimizer.warmup_steps=2",
              f"paths.cache_dir={tmp_path / 'cache'}")  # fmt: skip
    fit(compose_train(tmp_path / "whole", *common))
    stop = ("+callbacks.stop._target_=tests.training.callbacks_for_tests.StopAtStep",
            "+callbacks.stop.step=7")  # fmt: skip
    fit(compose_train(tmp_path / "first", *common, *stop))
    interrupted = tmp_path / "first" / "run" / "checkpoints" / "last.ckpt"
    state = torch.load(interrupted, weights_only=True)
    assert state["FineWebDataModule"]["train_batches_consumed"] == 7  # the stream position
    fit(compose_train(tmp_path / "resumed", *common, f"ckpt_path={interrupted}"))

    load = lambda run: torch.load(tmp_path / run / "run" / "checkpoints" / "last.ckpt",  # noqa: E731
                                  weights_only=True)["state_dict"]  # fmt: skip
    whole, resumed = load("whole"), load("resumed")
    for name in whole:
        torch.testing.assert_close(resumed[name], whole[name], rtol=0, atol=0, msg=name)
    assert len(list((tmp_path / "cache").glob("fineweb-epoch3-*[!k]"))) == 1  # 12 steps, 4 epochs
