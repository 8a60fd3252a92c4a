"""`scripts/train.py resume=<run folder>`: a killed run continues in its own folder and ends as
an uninterrupted one would, with one metrics file, one samples file and one result."""

import csv
import hashlib
import json
import os
import re
import shutil
import signal
import time

import pytest
import torch
from omegaconf import OmegaConf

from tests.conftest import built_once, run_train_script, start_train_script
from tests.script_server import BackgroundScript
from tinylm.runs.folder import RunFolder
from tinylm.runs.lock import hold_run_folder
from tinylm.training.optim import WarmupCosine

STEPS = 40
KILL = ("+callbacks.kill._target_=tests.training.callbacks_for_tests.KillAtStep",
        "+callbacks.kill.step=25")  # fmt: skip


def common_settings(root) -> tuple[str, ...]:
    story = root / "stories.txt"
    return (
        "model=tiny", "tokenizer=char", "data=text", f"data.path={story}", "logger=csv",
        f"trainer.max_steps={STEPS}", "trainer.val_check_interval=10",
        "trainer.limit_val_batches=2", "trainer.log_every_n_steps=1", "optimizer.warmup_steps=5",
        "+logger.csv.flush_logs_every_n_steps=1",  # rows reach the file before the kill
        "callbacks.generation_samples.max_new_tokens=4", "callbacks.progress_bar=null",
        f"paths.cache_dir={root / 'cache'}",
    )  # fmt: skip


def build_runs(root) -> None:
    """An uninterrupted run `whole`, and the same run killed at step 25 (its last checkpoint is
    from the validation at step 20) then resumed in place: `run`; the steps the killed run had
    logged, in logged_before.json."""
    story = root / "stories.txt"
    story.write_text("\n<|endoftext|>\n".join(["Once upon a time, Tom had a cat."] * 200))
    common = common_settings(root)
    whole = run_train_script(*common, f"hydra.run.dir={root / 'whole'}", cwd=root)
    assert whole.returncode == 0, whole.stderr
    killed = run_train_script(*common, *KILL, f"hydra.run.dir={root / 'run'}", cwd=root)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert torch.load(root / "run" / "checkpoints" / "last.ckpt")["global_step"] == 20
    logged_before = metric_steps(root / "run", "train/loss")
    # Hydra's ++ adds a key the defaults lack; null switches the killing callback off.
    resumed = run_train_script(f"resume={root / 'run'}", "++callbacks.kill=null", cwd=root)
    assert resumed.returncode == 0, resumed.stderr
    (root / "logged_before.json").write_text(json.dumps(logged_before))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """build_runs' folder, built once for the session (both workers run this file's tests):
    the tests read `whole` and `run` and write only folders of their own beside them."""
    root = built_once(tmp_path_factory, "resume", build_runs)
    return root, json.loads((root / "logged_before.json").read_text()), common_settings(root)


def sample_steps(run) -> list[int]:
    return [json.loads(line)["step"] for line in (run / "samples.jsonl").read_text().splitlines()]


def metric_steps(run, metric: str) -> list[int]:
    with open(run / "csv" / "metrics.csv") as handle:
        return [int(row["step"]) for row in csv.DictReader(handle) if row[metric]]


@pytest.mark.slow
def test_a_killed_run_resumed_in_place_ends_like_an_uninterrupted_one(runs):
    root, logged_before, _ = runs
    run, whole = root / "run", root / "whole"
    assert logged_before[-1] >= 21  # the killed run had logged past its checkpoint
    final = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    expected = torch.load(whole / "checkpoints" / "last.ckpt", weights_only=True)
    assert final["global_step"] == STEPS
    for name, tensor in expected["state_dict"].items():
        torch.testing.assert_close(final["state_dict"][name], tensor, rtol=0, atol=0, msg=name)

    # One metrics file for the whole run, each step logged once, as in the uninterrupted run.
    assert metric_steps(run, "train/loss") == list(range(STEPS))
    assert metric_steps(run, "val/loss") == metric_steps(whole, "val/loss") == [9, 19, 29, 39]
    lines = (run / "samples.jsonl").read_text().splitlines()
    samples = [json.loads(line)["step"] for line in lines]
    assert samples == [10, 10, 20, 20, 30, 30, 40, 40]  # two prompts per validation
    # Best-checkpoint tracking spans both segments, and result.json describes the whole run.
    result = json.loads((run / "result.json").read_text())
    assert result["status"] == "completed" and result["steps"] == STEPS
    assert result["best_val_loss"] == pytest.approx(
        json.loads((whole / "result.json").read_text())["best_val_loss"], abs=1e-6
    )
    assert "++callbacks.kill=null" in result["overrides"]
    assert len(list((run / "checkpoints").glob("best-*.ckpt"))) == 1
    config = OmegaConf.load(run / ".hydra" / "config.yaml")
    assert config.resume == str(run) and config.callbacks.kill is None


def folder_digest(folder) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.mark.slow
@pytest.mark.parametrize(
    "override, message",
    [
        ("model.d_model=128", "resume cannot change model.d_model: the run in .* has 64, this "
                              "command asks for 128"),
        ("tokenizer=bpe", "resume cannot change tokenizer.kind"),
        ("data.batch_size=4", "resume cannot change data.batch_size"),
        ("experiment=shakespeare_char", "experiment= cannot be given with resume="),
        ("trainer.max_steps=abc", "trainer.max_steps=abc is not allowed: trainer.max_steps "
                                  "takes a whole number"),
    ],
)  # fmt: skip
def test_a_change_a_resumed_run_cannot_take_is_one_sentence_and_changes_nothing(
    runs, override, message
):
    root, _, _ = runs
    before = folder_digest(root / "run")
    refused = run_train_script(f"resume={root / 'run'}", override, cwd=root)
    assert refused.returncode == 1
    assert "Traceback" not in refused.stderr
    (line,) = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert re.search(message, line), line
    assert folder_digest(root / "run") == before


@pytest.mark.slow
def test_resume_latest_continues_the_run_with_the_newest_checkpoint(runs):
    root, _, _ = runs
    runs_folder = root / "outputs" / "train" / "runs"
    runs_folder.mkdir(parents=True)
    older, newer = runs_folder / "older", runs_folder / "newer"
    shutil.copytree(root / "whole", older)
    shutil.copytree(root / "whole", newer)
    (newer / "checkpoints" / "last.ckpt").touch()  # written last
    untouched = folder_digest(older)
    resumed = run_train_script("resume=latest", f"trainer.max_steps={STEPS + 5}", cwd=root)
    assert resumed.returncode == 0, resumed.stderr
    assert torch.load(newer / "checkpoints" / "last.ckpt")["global_step"] == STEPS + 5
    assert metric_steps(newer, "train/loss") == list(range(STEPS + 5))
    assert folder_digest(older) == untouched
    assert OmegaConf.load(newer / ".hydra" / "config.yaml").trainer.max_steps == STEPS + 5


def test_resume_without_a_run_to_resume_says_so(tmp_path):
    missing = run_train_script(f"resume={tmp_path / 'nothing'}", cwd=tmp_path)
    assert missing.returncode == 1
    assert f"error: resume={tmp_path / 'nothing'} is not a run folder" in missing.stderr
    latest = run_train_script("resume=latest", cwd=tmp_path)
    assert latest.returncode == 1
    assert "error: resume=latest: no run under outputs/train/runs" in latest.stderr


@pytest.mark.slow
def test_a_new_run_into_a_folder_that_holds_one_is_refused_and_changes_nothing(runs):
    root, _, _ = runs
    before = folder_digest(root / "run")
    again = run_train_script("model=tiny", f"hydra.run.dir={root / 'run'}", cwd=root)
    assert again.returncode == 1 and "Traceback" not in again.stderr
    assert f"error: {root / 'run'} holds a run already; continue it with resume=" in again.stderr
    assert folder_digest(root / "run") == before


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_stops_after_the_step_with_a_checkpoint_and_the_run_resumes(runs, signum):
    root, _, common = runs
    run = root / f"stopped-{signum.name}"
    stop = ("+callbacks.signal._target_=tests.training.callbacks_for_tests.SignalAtStep",
            "+callbacks.signal.step=15", f"+callbacks.signal.signum={int(signum)}")  # fmt: skip
    stopped = run_train_script(*common, *stop, f"hydra.run.dir={run}", cwd=root)
    assert stopped.returncode == 128 + signum, stopped.stderr
    assert "Traceback" not in stopped.stderr
    # The signal came during step 16: that step ends, then the run validates and saves.
    assert f"Stopped by {signum.name} at step 16; continue with" in stopped.stderr
    result = json.loads((run / "result.json").read_text())
    assert result["status"] == "interrupted" and result["steps"] == 16
    assert torch.load(run / "checkpoints" / "last.ckpt")["global_step"] == 16

    resumed = run_train_script(f"resume={run}", "++callbacks.signal=null", cwd=root)
    assert resumed.returncode == 0, resumed.stderr
    # Numbered as the uninterrupted run, with the validation that ended the first part between.
    assert metric_steps(run, "train/loss") == list(range(STEPS))
    assert metric_steps(run, "val/loss") == [9, 15, 19, 29, 39]
    samples = sample_steps(run)
    assert samples == [10, 10, 16, 16, 20, 20, 30, 30, 40, 40]
    final = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    expected = torch.load(root / "whole" / "checkpoints" / "last.ckpt", weights_only=True)
    for name, tensor in expected["state_dict"].items():
        torch.testing.assert_close(final[name], tensor, rtol=0, atol=0, msg=name)
    assert json.loads((run / "result.json").read_text())["status"] == "completed"


@pytest.mark.slow
def test_resuming_a_finished_run_says_so_and_changes_nothing(runs):
    root, _, _ = runs
    whole = root / "whole"
    before = folder_digest(whole)
    again = run_train_script(f"resume={whole}", "optimizer.lr=1e-2", cwd=root)
    assert again.returncode == 0, again.stderr
    assert f"The run in {whole} has trained all its {STEPS} steps (result: completed); nothing " \
           "to do, nothing changed." in again.stderr  # fmt: skip
    fewer = run_train_script(f"resume={whole}", f"trainer.max_steps={STEPS - 10}", cwd=root)
    assert fewer.returncode == 1 and "Traceback" not in fewer.stderr
    assert f"error: trainer.max_steps={STEPS - 10} is fewer than the {STEPS} steps the run in " \
           f"{whole} has trained" in fewer.stderr  # fmt: skip
    assert folder_digest(whole) == before


def copy_of_the_whole_run(runs, name: str):
    root, _, _ = runs
    shutil.copytree(root / "whole", root / name)
    return root, root / name


@pytest.mark.slow
def test_optimizer_settings_and_more_steps_on_resume_take_effect_from_the_resumed_step(runs):
    root, run = copy_of_the_whole_run(runs, "longer")
    more = STEPS + 10
    resumed = run_train_script(
        f"resume={run}", f"trainer.max_steps={more}", "optimizer.lr=1e-2",
        "optimizer.min_lr=1e-3", cwd=root,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert f"From step {STEPS} the learning rate follows this run's settings" in resumed.stderr
    # The schedule of the new settings, re-planned for `more` steps (warmup 5: under a tenth).
    schedule = WarmupCosine(warmup_steps=5, total_steps=more, min_ratio=0.1)
    with open(run / "csv" / "metrics.csv") as handle:
        lrs = {int(row["step"]): float(row["train/lr"]) for row in csv.DictReader(handle)
               if row["train/lr"]}  # fmt: skip
    for step in range(STEPS, more):
        assert lrs[step] == pytest.approx(1e-2 * schedule(step), rel=1e-5), step
    # What the folder records is what ran.
    assert OmegaConf.load(run / ".hydra" / "config.yaml").optimizer.lr == 1e-2
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["hyper_parameters"]["optimizer"]["lr"] == 1e-2
    assert checkpoint["global_step"] == more


def start_resume(run, root, *overrides) -> BackgroundScript:
    """scripts/train.py resume=<run> started in the background; its stderr goes to a file beside
    the run."""
    return start_train_script(f"resume={run}", *overrides, cwd=root,
                              stderr=root / f"{run.name}.stderr")  # fmt: skip


def stderr_of(run) -> str:
    return (run.parent / f"{run.name}.stderr").read_text()


def wait_for_the_lock(run, process: BackgroundScript) -> None:
    lock = RunFolder(run).lock
    deadline = time.monotonic() + 300
    while not (lock.is_file() and lock.read_text().strip() == str(process.pid)):
        assert process.poll() is None, stderr_of(run)
        assert time.monotonic() < deadline
        time.sleep(0.1)


@pytest.mark.slow
def test_a_second_process_in_a_run_folder_is_refused_and_the_first_completes(runs):
    root, run = copy_of_the_whole_run(runs, "twice")
    more = STEPS + 30
    first = start_resume(run, root, f"trainer.max_steps={more}")
    wait_for_the_lock(run, first)
    # Paused, so that it is still training whenever the second one starts, however slowly.
    first.send_signal(signal.SIGSTOP)
    try:
        second = run_train_script(f"resume={run}", f"trainer.max_steps={more}", cwd=root)
    finally:
        first.send_signal(signal.SIGCONT)
    assert second.returncode == 1 and "Traceback" not in second.stderr
    assert f"error: {run} is in use: process {first.pid} is training in it" in second.stderr
    assert first.wait() == 0, stderr_of(run)
    assert metric_steps(run, "train/loss") == list(range(more))
    samples = sample_steps(run)
    assert samples == sorted(samples) and len(samples) == len(set(samples)) * 2
    # Lightning adds -v1 to a checkpoint name that another process's file took.
    assert list((run / "checkpoints").glob("*-v[0-9].ckpt")) == []


@pytest.mark.slow
def test_the_lock_of_a_killed_process_is_gone(runs):
    root, run = copy_of_the_whole_run(runs, "killed-holder")
    holder = start_resume(run, root, f"trainer.max_steps={STEPS + 1000}")
    wait_for_the_lock(run, holder)
    holder.kill()  # SIGKILL: no handler, no clean-up runs
    assert holder.wait() == -signal.SIGKILL
    with hold_run_folder(RunFolder(run)):  # would raise had the lock outlived its process
        assert RunFolder(run).lock.read_text().strip() == str(os.getpid())
