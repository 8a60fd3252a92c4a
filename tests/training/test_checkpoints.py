"""Checkpoints during training: last.ckpt is the newest state, and a save that fails (a full
disk) or is killed leaves the previous checkpoints whole, from which the run resumes."""

import csv
import errno
import os
import re
import time
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
import torch

from tests.conftest import compose_train, make_story_corpus, run_train_script, start_train_script
from tinylm.checkpoint import load_checkpoint
from tinylm.errors import WriteError
from tinylm.runs import checkpoint_io as checkpoint_io_module
from tinylm.training import fit
from tinylm.utils.files import atomic_write

TINY_CHAR = ("model=tiny", "data=text", "tokenizer=char", "logger=csv",
             "callbacks.progress_bar=null")  # fmt: skip


def checkpoint(path):
    return torch.load(path, weights_only=True)


def val_losses(run):
    with open(run / "csv" / "metrics.csv") as handle:
        return {
            int(row["step"]) + 1: float(row["val/loss"])  # the CSV counts steps from 0
            for row in csv.DictReader(handle)
            if row["val/loss"]
        }


def test_last_ckpt_is_the_final_state_when_the_best_was_earlier(tmp_path, story_file):
    final = tmp_path / "final.pt"
    fit(compose_train(
        tmp_path, *TINY_CHAR, f"data.path={story_file}", "trainer.max_steps=30",
        "trainer.val_check_interval=10", "optimizer.lr=3e-3",
        "+callbacks.scramble._target_=tests.training.callbacks_for_tests.ScrambleWeightsAtStep",
        "+callbacks.scramble.step=11",
        "+callbacks.final._target_=tests.training.callbacks_for_tests.SaveFinalWeights",
        f"+callbacks.final.path={final}",
    ))  # fmt: skip
    folder = tmp_path / "run" / "checkpoints"
    losses = val_losses(tmp_path / "run")
    assert min(losses, key=losses.get) == 10  # the premise: the best validation came first

    (best,) = folder.glob("best-*.ckpt")
    assert best.name == f"best-step0000010-val{losses[10]:.4f}.ckpt"
    assert checkpoint(best)["global_step"] == 10
    last = checkpoint(folder / "last.ckpt")
    assert last["global_step"] == 30
    final_weights = torch.load(final, weights_only=True)
    for name, tensor in final_weights.items():
        torch.testing.assert_close(last["state_dict"][f"model.{name}"], tensor, rtol=0, atol=0)
    # Saved after the best: it knows which checkpoint is best, for a run resumed from it.
    (best_state,) = [
        state for key, state in last["callbacks"].items()
        if key.startswith("ModelCheckpoint{'monitor': 'val/loss'")
    ]  # fmt: skip
    assert best_state["best_model_path"] == str(best)
    assert sorted(p.name for p in folder.iterdir()) == [best.name, "last.ckpt"]


def test_a_run_without_validation_saves_last_ckpt_when_it_ends(tmp_path, story_file):
    fit(compose_train(tmp_path, *TINY_CHAR, f"data.path={story_file}", "trainer.max_steps=7",
                      "trainer.limit_val_batches=0"))  # fmt: skip
    folder = tmp_path / "run" / "checkpoints"
    assert os.listdir(folder) == ["last.ckpt"]
    assert checkpoint(folder / "last.ckpt")["global_step"] == 7


def files_in(folder):
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


class DiskFullMidway:
    """Stands in for atomic_write in tinylm.runs.checkpoint_io: the `fail_at`-th checkpoint
    whose name starts with `prefix` gets half its bytes written, then "No space left on
    device". The checkpoint folder as it was just before is kept in `before`."""

    def __init__(self, prefix: str, fail_at: int) -> None:
        self.prefix, self.fail_at = prefix, fail_at
        self.seen = 0
        self.before: dict[str, bytes] | None = None

    @contextmanager
    def __call__(self, path, mode, *args, **kwargs):
        path = Path(path)
        self.seen += path.name.startswith(self.prefix)
        failing = path.name.startswith(self.prefix) and self.seen == self.fail_at
        if failing:
            self.before = files_in(path.parent)
        with atomic_write(path, mode, *args, **kwargs) as handle:
            yield HalfThenFull(handle) if failing else handle


class HalfThenFull:
    def __init__(self, handle) -> None:
        self.handle = handle

    def write(self, data) -> int:
        self.handle.write(bytes(data)[: len(data) // 2])
        self.handle.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def train_30_steps(folder, story_file, *overrides):
    return fit(compose_train(
        folder, *TINY_CHAR, f"data.path={story_file}", "trainer.max_steps=30",
        "trainer.val_check_interval=10", "optimizer.warmup_steps=5", *overrides,
    ))  # fmt: skip


@pytest.fixture(scope="module")
def uninterrupted_weights(tmp_path_factory):
    """The final weights of train_30_steps without a failure, on the story_file corpus."""
    folder = tmp_path_factory.mktemp("uninterrupted")
    story_file = folder / "stories.txt"
    story_file.write_text("\n<|endoftext|>\n".join(make_story_corpus(400)) + "\n")
    train_30_steps(folder, story_file)
    return checkpoint(folder / "run" / "checkpoints" / "last.ckpt")["state_dict"]


@pytest.mark.parametrize(
    "prefix, last_good",
    [("best-", "last.ckpt"), ("last", "best-step0000020-*.ckpt")],
    ids=["a new best", "last.ckpt over itself"],
)
def test_a_disk_full_during_a_save_keeps_the_previous_checkpoints_and_the_run_resumes(
    tmp_path, story_file, monkeypatch, uninterrupted_weights, prefix, last_good
):
    # Validations at steps 10 and 20 (both best) save best, then last: the second save of
    # `prefix` fails, at step 20.
    disk = DiskFullMidway(prefix, fail_at=2)
    monkeypatch.setattr(checkpoint_io_module, "atomic_write", disk)
    with pytest.raises(WriteError) as error:
        train_30_steps(tmp_path / "full", story_file)
    monkeypatch.undo()

    folder = tmp_path / "full" / "run" / "checkpoints"
    assert disk.before is not None
    assert files_in(folder) == disk.before  # byte for byte, and no partial or temporary file
    message = re.fullmatch(
        r"No space left on device while saving (.+): free space or point paths.output_dir "
        r"elsewhere; the last good checkpoint is (.+) \(step (\d+)\)\.",
        str(error.value),
    )  # fmt: skip
    assert message is not None, error.value
    failed, good, step = Path(message[1]), Path(message[2]), int(message[3])
    assert failed.parent == folder and failed.name.startswith(prefix)
    assert good.match(last_good) and checkpoint(good)["global_step"] == step

    # Resumed from the checkpoint the sentence names, the run ends as if it had never failed.
    train_30_steps(tmp_path / "resumed", story_file, f"ckpt_path={good}")
    resumed = checkpoint(tmp_path / "resumed" / "run" / "checkpoints" / "last.ckpt")
    assert resumed["global_step"] == 30
    for name, tensor in uninterrupted_weights.items():
        torch.testing.assert_close(resumed["state_dict"][name], tensor, rtol=0, atol=0, msg=name)


def test_a_real_full_disk_keeps_last_ckpt_and_the_run_resumes_from_it(
    tmp_path, story_file, trained_run, small_filesystem
):
    # Room for one checkpoint and a half: the first last.ckpt fits, the second (written beside
    # the first before it replaces it) does not. The trained_run fixture's checkpoints are of
    # the same model and vocabulary.
    size = (trained_run / "run" / "checkpoints" / "last.ckpt").stat().st_size
    disk = small_filesystem(int(size * 1.5) + 256 * 1024)
    with pytest.raises(WriteError, match="No space left on device while saving .*last.ckpt"):
        train_30_steps(
            tmp_path,
            story_file,
            f"paths.output_dir={disk / 'run'}",
            "callbacks.best_checkpoint=null",
        )
    folder = disk / "run" / "checkpoints"
    assert sorted(path.name for path in folder.iterdir()) == ["last.ckpt"]
    assert load_checkpoint(folder / "last.ckpt").global_step == 10

    train_30_steps(tmp_path / "resumed", story_file, f"ckpt_path={folder / 'last.ckpt'}")
    resumed = tmp_path / "resumed" / "run"
    assert checkpoint(resumed / "checkpoints" / "last.ckpt")["global_step"] == 30
    assert sorted(val_losses(resumed)) == [20, 30]  # it went on from step 10


@pytest.mark.slow
def test_a_run_killed_while_saving_always_leaves_a_loadable_last_ckpt(tmp_path, story_file):
    """SIGKILL lands while a checkpoint is being written (its temporary file exists): the
    run folder still holds a whole last.ckpt, and the next run resumes from it."""
    resume = ()
    killed_mid_save = 0
    for attempt in range(3):
        run = tmp_path / f"attempt{attempt}"
        folder = run / "checkpoints"
        process = start_train_script(
            *TINY_CHAR, f"data.path={story_file}", "trainer.max_steps=1000",
            "trainer.val_check_interval=2", "trainer.limit_val_batches=1",
            "callbacks.generation_samples=null", f"hydra.run.dir={run}",
            f"paths.cache_dir={tmp_path / 'cache'}", *resume, cwd=tmp_path,
        )  # fmt: skip
        try:
            wait_for_a_save_over_last_ckpt(folder, process)
        finally:
            process.kill()
            process.wait()
        names = os.listdir(folder)
        killed_mid_save += any(name.endswith(".tmp") for name in names)
        for name in names:
            if name.endswith(".ckpt"):  # every file under a checkpoint's name is whole
                assert load_checkpoint(folder / name).global_step > 0
        resume = (f"ckpt_path={folder / 'last.ckpt'}",)
    assert killed_mid_save >= 2  # the kills did land during saves


def wait_for_a_save_over_last_ckpt(folder, process, timeout=300):
    """Return as soon as a checkpoint is being written (its temporary file is there) while a
    last.ckpt exists already."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the run ended before it could be killed"
        with suppress(FileNotFoundError):
            names = os.listdir(folder)
            if "last.ckpt" in names and any(name.endswith(".tmp") for name in names):
                return
        time.sleep(0.0005)
    raise AssertionError(f"no checkpoint save seen in {timeout} s")


@pytest.mark.slow
def test_a_full_disk_under_ddp_stops_every_process_with_the_sentence(
    tmp_path, story_file, trained_run, small_filesystem
):
    """Rank zero writes, the other process waits for it: both stop with the same sentence
    (without the waiting one failing with a traceback of its own, or hanging)."""
    size = (trained_run / "run" / "checkpoints" / "last.ckpt").stat().st_size
    disk = small_filesystem(int(size * 1.5) + 256 * 1024)
    result = run_train_script(
        *TINY_CHAR, f"data.path={story_file}", "trainer.max_steps=30",
        "trainer.val_check_interval=10", "trainer.limit_val_batches=2", "hardware=ddp",
        "hardware.accelerator=cpu", "hardware.devices=2", "callbacks.best_checkpoint=null",
        f"hydra.run.dir={disk / 'run'}", f"paths.cache_dir={tmp_path / 'cache'}",
        cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    folder = disk / "run" / "checkpoints"
    sentence = (
        f"error: No space left on device while saving {folder / 'last.ckpt'}: free space or point "
        f"paths.output_dir elsewhere; the last good checkpoint is {folder / 'last.ckpt'} (step 10)."
    )
    assert result.stderr.count(sentence) == 2  # one per process
    assert sorted(path.name for path in folder.iterdir()) == ["last.ckpt"]
    assert load_checkpoint(folder / "last.ckpt").global_step == 10
