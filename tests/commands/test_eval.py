"""scripts/eval.py reproduces training's validation numbers from a run folder alone."""

import csv
import json
import logging
import math

import pytest
import torch

from tests.conftest import compose_config, run_script
from tinylm.commands.eval import evaluate
from tinylm.commands.settings import settings_of
from tinylm.errors import ConfigError, DataError
from tinylm.schema import check_settings


def logged_validation(trained_run) -> dict:
    with open(trained_run / "run" / "csv" / "metrics.csv") as handle:
        rows = [row for row in csv.DictReader(handle) if row["val/loss"]]
    return {key: float(value) for key, value in rows[-1].items() if key.startswith("val/")}


def eval_overrides(trained_run, tmp_path, *overrides):
    return (
        f"ckpt_path={trained_run / 'run' / 'checkpoints' / 'last.ckpt'}",
        "data=text", f"data.path={trained_run / 'stories.txt'}",
        f"paths.cache_dir={tmp_path / 'cache'}",  # leaves the shared run's cache alone
        *overrides,
    )  # fmt: skip


def test_the_eval_script_on_the_run_alone_reproduces_its_numbers_from_its_own_cache(
    trained_run, tmp_path
):
    cache = trained_run / "cache"
    cache_entries = sorted(path.name for path in cache.iterdir())
    output = tmp_path / "eval.json"
    result = run_script(
        "eval", f"ckpt_path={trained_run / 'run'}", f"output_file={output}",
        f"paths.log_dir={tmp_path / 'outputs'}", cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    numbers = json.loads(output.read_text())
    logged = logged_validation(trained_run)
    assert numbers["split"] == "val"
    assert numbers["loss"] == pytest.approx(logged["val/loss"], rel=1e-5)
    assert numbers["perplexity"] == pytest.approx(logged["val/ppl"], rel=1e-5)
    assert numbers["accuracy"] == pytest.approx(logged["val/acc"], rel=1e-5)
    assert numbers["bpb"] == pytest.approx(logged["val/bpb"], rel=1e-5)
    # Validation reads non-overlapping windows of 128 + 1 tokens from the start of the split.
    (meta,) = cache.glob("text-*/meta.json")
    val_tokens = json.loads(meta.read_text())["splits"]["val"]["tokens"]
    assert numbers["tokens"] == (val_tokens - 1) // 128 * 128
    assert f"val: loss {numbers['loss']:.4f}" in result.stderr
    assert sorted(path.name for path in cache.iterdir()) == cache_entries  # nothing tokenized


def checkpoint_with_data(trained_run, tmp_path, **data_changes):
    """A copy of the run's last checkpoint whose recorded data config is changed."""
    checkpoint = torch.load(trained_run / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    checkpoint["hyper_parameters"]["data_config"].update(data_changes)
    path = tmp_path / "changed.ckpt"
    torch.save(checkpoint, path)
    return path


def test_without_its_cache_eval_tokenizes_the_recorded_source_again_and_says_so(
    trained_run, tmp_path, caplog
):
    caplog.set_level(logging.INFO)
    path = checkpoint_with_data(trained_run, tmp_path, cache_dir=str(tmp_path / "new-cache"))
    numbers = evaluate(compose_config("eval", f"ckpt_path={path}", f"paths.output_dir={tmp_path}"))
    assert "tokenizing the data with it" in caplog.text
    assert numbers["loss"] == pytest.approx(logged_validation(trained_run)["val/loss"], rel=1e-5)
    assert len(list((tmp_path / "new-cache").glob("text-*/meta.json"))) == 1


def test_without_its_cache_and_its_source_eval_says_so(trained_run, tmp_path):
    path = checkpoint_with_data(
        trained_run,
        tmp_path,
        cache_dir=str(tmp_path / "new-cache"),
        path=str(tmp_path / "gone.txt"),
    )
    with pytest.raises(DataError, match="gone.txt"):
        evaluate(compose_config("eval", f"ckpt_path={path}", f"paths.output_dir={tmp_path}"))


def test_the_training_split_and_a_batch_limit(trained_run, tmp_path):
    cfg = compose_config(
        "eval", *eval_overrides(trained_run, tmp_path), "split=train", "limit_batches=2",
        "data.batch_size=4", f"paths.output_dir={tmp_path}",
    )  # fmt: skip
    numbers = evaluate(cfg)
    assert numbers["split"] == "train" and numbers["batches"] == 2
    assert numbers["tokens"] == 2 * 4 * 128
    assert numbers["perplexity"] == pytest.approx(math.exp(numbers["loss"]))
    assert 0.0 < numbers["accuracy"] < 1.0
    assert json.loads((tmp_path / "eval.json").read_text()) == numbers


@pytest.mark.parametrize(
    "override, message",
    [("split=test", "split=test is not allowed: split takes one of train, val"),
     ("limit_batches=0", "limit_batches=0 .* takes a whole number ≥ 1 or null")],
)  # fmt: skip
def test_bad_eval_settings_say_what_is_wrong(trained_run, tmp_path, override, message):
    cfg = compose_config(
        "eval", *eval_overrides(trained_run, tmp_path), override, f"paths.output_dir={tmp_path}"
    )
    with pytest.raises(ConfigError, match=message):
        check_settings(cfg, settings_of(evaluate))


def test_a_train_split_shorter_than_a_window_does_not_stop_evaluating_the_val_split(
    trained_run, tmp_path
):
    short = tmp_path / "short.txt"  # ~90 training tokens, ~800 validation ones
    short.write_text((trained_run / "stories.txt").read_text()[:1000])
    data = (f"data.path={short}", "data.val_fraction=0.9")
    cfg = compose_config("eval", *eval_overrides(trained_run, tmp_path, *data),
                         f"paths.output_dir={tmp_path}", "limit_batches=null")  # fmt: skip
    numbers = evaluate(cfg)
    assert numbers["split"] == "val" and numbers["tokens"] == 6 * 128  # 6 windows of 128 + 1
    cfg.split = "train"
    with pytest.raises(
        DataError, match=r"train split holds \d+ tokens, fewer than .* = 129"
    ) as refused:
        evaluate(cfg)
    # The checkpoint fixes the context: lowering it is no advice here.
    assert str(refused.value).endswith("give more text or lower data.val_fraction.")
