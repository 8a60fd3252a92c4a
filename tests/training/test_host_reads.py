"""Training reads nothing off the device between logging steps, and its record is unchanged:
the loss curve holds every step's loss exactly, metrics.csv the same values as before."""

import csv
import json

import pytest
import torch

from tests.conftest import compose_train
from tinylm.training import fit
from tinylm.training.optim import WarmupCosine, warmup_steps_for

LOG_EVERY = 5


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A 23-step tiny run logging every 5 steps, validating once at the end, with a callback
    that reads the loss after every step as the loss curve used to, and one that counts reads."""
    folder = tmp_path_factory.mktemp("reads")
    story = folder / "stories.txt"
    story.write_text("\n<|endoftext|>\n".join(f"Tom had a cat number {i}." for i in range(400)))
    fit(compose_train(
        folder, "model=tiny", "data=text", "tokenizer=char", f"data.path={story}",
        "logger=csv", "trainer.max_steps=23", f"trainer.log_every_n_steps={LOG_EVERY}",
        "trainer.val_check_interval=1000", "trainer.limit_val_batches=2",
        "+callbacks.reference._target_=tests.training.callbacks_for_tests.ReadLossEveryStep",
        f"+callbacks.reference.path={folder / 'reference.json'}",
        "+callbacks.count._target_=tests.training.callbacks_for_tests.CountHostReads",
        f"+callbacks.count.path={folder / 'reads.json'}",
    ))  # fmt: skip
    return folder


def test_training_steps_between_logging_steps_read_nothing_from_the_device(run):
    reads = {
        int(step): count for step, count in json.loads((run / "reads.json").read_text()).items()
    }
    # Reads after each step, from the end of the one before: steps 5, 10, ... log (and their
    # logging finishes after the step's end, so the read shows at steps 6, 11, ...); step 1
    # shows the progress bar's first loss; the reference callback reads at every step, once.
    for step in range(2, 24):
        extra = reads[step] - reads[step - 1] - 1  # less the reference's own read
        if step % LOG_EVERY in (0, 1):
            assert extra > 0, step
        else:
            assert extra == 0, f"{extra} reads at step {step}"


def test_the_loss_curve_holds_the_loss_of_every_step_exactly(run):
    checkpoint = torch.load(run / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    (curve,) = [state for key, state in checkpoint["callbacks"].items() if "LossCurve" in key]
    reference = [tuple(point) for point in json.loads((run / "reference.json").read_text())]
    assert [tuple(point) for point in curve["train"]] == reference
    assert [step for step, _ in reference] == list(range(1, 24))


def test_metrics_csv_logs_the_same_loss_and_learning_rate(run):
    with open(run / "run" / "csv" / "metrics.csv") as handle:
        rows = [row for row in csv.DictReader(handle) if row["train/loss"]]
    reference = dict(tuple(point) for point in json.loads((run / "reference.json").read_text()))
    # A row's step counts the optimizer steps before it: the loss of optimizer step step + 1.
    # Lightning also logs the last step, where the run stops.
    assert [int(row["step"]) for row in rows] == [4, 9, 14, 19, 22]
    schedule = WarmupCosine(warmup_steps_for(500, 23), 23, min_ratio=3e-5 / 3e-4)
    for row in rows:
        step = int(row["step"])
        assert float(row["train/loss"]) == reference[step + 1]
        assert float(row["train/lr"]) == pytest.approx(3e-4 * schedule(step), rel=1e-6)
