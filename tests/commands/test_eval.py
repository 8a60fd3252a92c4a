"""scripts/eval.py reproduces training's validation numbers from a checkpoint."""

import csv
import json
import math
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT, compose_config
from tinylm.commands.eval import evaluate
from tinylm.errors import ConfigError


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


def test_the_eval_script_reproduces_the_logged_validation_numbers(trained_run, tmp_path):
    output = tmp_path / "eval.json"
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "eval.py"),
         *eval_overrides(trained_run, tmp_path), f"output_file={output}",
         f"paths.log_dir={tmp_path / 'outputs'}"],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
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
    (meta,) = (tmp_path / "cache").glob("text-*/meta.json")
    val_tokens = json.loads(meta.read_text())["splits"]["val"]["tokens"]
    assert numbers["tokens"] == (val_tokens - 1) // 128 * 128
    assert f"val: loss {numbers['loss']:.4f}" in result.stdout


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
    [("split=test", "split must be one of"), ("limit_batches=0", "limit_batches must be")],
)
def test_bad_eval_settings_say_what_is_wrong(trained_run, tmp_path, override, message):
    cfg = compose_config(
        "eval", *eval_overrides(trained_run, tmp_path), override, f"paths.output_dir={tmp_path}"
    )
    with pytest.raises(ConfigError, match=message):
        evaluate(cfg)
