"""A run whose loss or weights stop being numbers stops there, says so, and saves nothing of it."""

import json
import math
from types import SimpleNamespace

import pytest
import torch

from tests.conftest import compose_train, run_train_script
from tinylm.errors import DivergenceError
from tinylm.runs.divergence import StopWhenDiverged
from tinylm.training import fit

TINY_CHAR = ("model=tiny", "data=text", "tokenizer=char", "logger=csv",
             "callbacks.progress_bar=null")  # fmt: skip


def assert_finite_and_named_by_a_number(checkpoints):
    for path in checkpoints:
        assert "nan" not in path.name and "inf" not in path.name
        weights = torch.load(path, weights_only=True)["state_dict"]
        assert all(torch.isfinite(tensor).all() for tensor in weights.values()), path


def test_a_diverging_run_stops_at_its_first_non_finite_loss_and_exits_non_zero(
    tmp_path, story_file
):
    losses = tmp_path / "losses.txt"
    result = run_train_script(
        *TINY_CHAR, f"data.path={story_file}", "optimizer.lr=1e3", "trainer.max_steps=200",
        "trainer.val_check_interval=5", "trainer.limit_val_batches=1",
        "trainer.log_every_n_steps=1000",  # so that the run is stopped where it validates
        "+callbacks.losses._target_=tests.training.callbacks_for_tests.RecordTrainingLosses",
        f"+callbacks.losses.path={losses}", f"hydra.run.dir={tmp_path / 'run'}",
        f"paths.cache_dir={tmp_path / 'cache'}", cwd=tmp_path,
    )  # fmt: skip
    steps = [
        (int(step), float(loss)) for step, loss in map(str.split, losses.read_text().splitlines())
    ]
    first = next(step for step, loss in steps if not math.isfinite(loss))
    assert first > 1 and steps[-1][0] < 200  # the premise: it diverged, after a finite start

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    sentence = (
        f"Training diverged: the training loss became NaN or infinite at step {first}; lower "
        "optimizer.lr (now 1000) or raise optimizer.warmup_steps, and train again."
    )
    assert result.stderr.strip().splitlines()[-1] == f"error: {sentence}"
    assert steps[-1][0] == 5 * math.ceil(first / 5)  # stopped at the validation after it
    record = json.loads((tmp_path / "run" / "result.json").read_text())
    assert (record["status"], record["error"]) == ("diverged", sentence)
    assert_finite_and_named_by_a_number((tmp_path / "run").rglob("*.ckpt"))


def test_weights_that_stop_being_finite_are_never_saved(tmp_path, story_file):
    # A finite loss can still step the weights to infinity; a checkpoint every step would save them.
    with pytest.raises(DivergenceError, match="the weights became NaN or infinite at step 7;"):
        fit(compose_train(
            tmp_path, *TINY_CHAR, f"data.path={story_file}", "trainer.max_steps=20",
            "callbacks.periodic_checkpoint.every_n_train_steps=1",
            "+callbacks.inf._target_=tests.training.callbacks_for_tests.InfiniteWeightsAtStep",
            "+callbacks.inf.step=7",
        ))  # fmt: skip
    saved = sorted(p.name for p in (tmp_path / "run" / "checkpoints").glob("step*.ckpt"))
    assert saved == [f"step{step:07d}.ckpt" for step in range(1, 7)]
    assert_finite_and_named_by_a_number((tmp_path / "run").rglob("*.ckpt"))


def test_a_non_finite_validation_loss_stops_the_run_and_is_never_named_best(tmp_path, story_file):
    folder = tmp_path / "run" / "checkpoints"
    with pytest.raises(
        DivergenceError,
        match=r"the validation loss \(val/loss\) became NaN or infinite at step 20;",
    ):
        fit(compose_train(
            tmp_path, *TINY_CHAR, f"data.path={story_file}", "trainer.max_steps=40",
            "trainer.val_check_interval=10",
            "+callbacks.nan._target_=tests.training.callbacks_for_tests.NaNWeightsBeforeValidationAtStep",
            "+callbacks.nan.step=20",
        ))  # fmt: skip
    (best,) = folder.glob("best-*.ckpt")
    assert best.name.startswith("best-step0000010-")
    assert torch.load(folder / "last.ckpt", weights_only=True)["global_step"] == 10
    assert_finite_and_named_by_a_number(folder.glob("*.ckpt"))


def test_the_loss_is_not_read_on_the_host_between_logging_steps():
    # A tensor on the meta device has no value: reading one on the host (item(), bool(), int())
    # raises. Such a read is what would make a GPU wait for the host at every step.
    stop = StopWhenDiverged()
    trainer = SimpleNamespace(
        accumulate_grad_batches=2, log_every_n_steps=50, should_stop=False,
        strategy=SimpleNamespace(reduce=lambda tensor, reduce_op: tensor),  # one process
    )  # fmt: skip
    loss = torch.tensor(float("nan"), device="meta")
    for batch_idx in range(98):  # micro-batches of optimizer steps 1 to 49
        trainer.global_step = (batch_idx + 1) // 2
        stop.on_train_batch_end(trainer, None, {"loss": loss}, None, batch_idx)
    assert stop.first_nonfinite_step.device.type == "meta"
    trainer.global_step = 50  # a logging step: now it is read
    with pytest.raises(RuntimeError, match="cannot be called on meta tensors"):
        stop.on_train_batch_end(trainer, None, {"loss": loss}, None, batch_idx=99)
