"""`scripts/train.py resume=<run folder>`: a killed run continues in its own folder and ends as
an uninterrupted one would, with one metrics file, one samples file and one result."""

import csv
import hashlib
import json
import re
import shutil
import signal

import pytest
import torch
from omegaconf import OmegaConf

from tests.conftest import run_train_script

STEPS = 40
KILL = ("+callbacks.kill._target_=tests.training.callbacks_for_tests.KillAtStep",
        "+callbacks.kill.step=25")  # fmt: skip


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An uninterrupted run `whole`, and the same run killed at step 25 (its last checkpoint is
    from the validation at step 20) then resumed in place: `run`."""
    root = tmp_path_factory.mktemp("resume")
    story = root / "stories.txt"
    story.write_text("\n<|endoftext|>\n".join(["Once upon a time, Tom had a cat."] * 200))
    common = (
        "model=tiny", "tokenizer=char", "data=text", f"data.path={story}", "logger=csv",
        f"trainer.max_steps={STEPS}", "trainer.val_check_interval=10",
        "trainer.limit_val_batches=2", "trainer.log_every_n_steps=1", "optimizer.warmup_steps=5",
        "+logger.csv.flush_logs_every_n_steps=1",  # rows reach the file before the kill
        "callbacks.generation_samples.max_new_tokens=4", "callbacks.progress_bar=null",
        f"paths.cache_dir={root / 'cache'}",
    )  # fmt: skip
    whole = run_train_script(*common, f"hydra.run.dir={root / 'whole'}", cwd=root)
    assert whole.returncode == 0, whole.stderr
    killed = run_train_script(*common, *KILL, f"hydra.run.dir={root / 'run'}", cwd=root)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert torch.load(root / "run" / "checkpoints" / "last.ckpt")["global_step"] == 20
    logged_before = metric_steps(root / "run", "train/loss")
    # Hydra's ++ adds a key the defaults lack; null switches the killing callback off.
    resumed = run_train_script(f"resume={root / 'run'}", "++callbacks.kill=null", cwd=root)
    assert resumed.returncode == 0, resumed.stderr
    return root, logged_before, common


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
    final = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    expected = torch.load(root / "whole" / "checkpoints" / "last.ckpt", weights_only=True)
    for name, tensor in expected["state_dict"].items():
        torch.testing.assert_close(final[name], tensor, rtol=0, atol=0, msg=name)
    assert json.loads((run / "result.json").read_text())["status"] == "completed"
