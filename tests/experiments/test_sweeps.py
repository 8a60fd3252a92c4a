"""Hydra multirun and Optuna sweeps, run as a user runs them: `scripts/train.py` in a subprocess."""

import csv
import json

import optuna
import pytest
import torch
from omegaconf import OmegaConf

from tests.conftest import run_train_script
from tests.training.wandb_files import environment_without_api_key, offline_run
from tinylm.experiments.compare import compare

TINY_SWEEP = ("model=tiny", "tokenizer=char", "data=text", "trainer.max_steps=6",
              "trainer.val_check_interval=3", "trainer.limit_val_batches=2",
              "callbacks.progress_bar=null")  # fmt: skip


def sweep(tmp_path, story_file, *args):
    result = run_train_script(
        "-m", *TINY_SWEEP, f"data.path={story_file}", f"paths.log_dir={tmp_path / 'logs'}",
        f"paths.cache_dir={tmp_path / 'cache'}", *args, cwd=tmp_path,
        env=environment_without_api_key(tmp_path),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (folder,) = (tmp_path / "logs" / "train" / "multiruns").iterdir()
    assert not (tmp_path / "logs" / "train" / "runs").exists()  # no stray single-run folder
    return result, folder


def summary_rows(folder):
    with open(folder / "summary.csv") as handle:
        return list(csv.DictReader(handle))


def csv_rows(job_folder) -> list[dict]:
    with open(job_folder / "csv" / "metrics.csv") as handle:
        return list(csv.DictReader(handle))


def last_val_loss(job_folder) -> float:
    return [float(r["val/loss"]) for r in csv_rows(job_folder) if r["val/loss"]][-1]


@pytest.mark.slow
def test_a_multirun_trains_each_job_in_its_own_folder_and_ends_with_a_sorted_summary(
    tmp_path, story_file
):
    result, folder = sweep(tmp_path, story_file, "logger=many", "optimizer.lr=1e-3,1e-2")

    for job, lr in (("0", 1e-3), ("1", 1e-2)):
        checkpoint = torch.load(folder / job / "checkpoints" / "last.ckpt", weights_only=True)
        assert checkpoint["hyper_parameters"]["optimizer"]["lr"] == lr
        assert checkpoint["global_step"] == 6
        # wandb: one run per job, named by its overrides, grouped by the sweep for comparing.
        _, records = offline_run(folder / job)
        (run,) = [record.run for record in records if record.HasField("run")]
        assert run.run_group == folder.name
        assert f"optimizer.lr={lr:g}" in run.display_name and "paths." not in run.display_name
    rows = summary_rows(folder)
    assert sorted(row["overrides"] for row in rows) == ["optimizer.lr=0.001", "optimizer.lr=0.01"]
    losses = [float(row["best_val_loss"]) for row in rows]
    assert losses == sorted(losses)
    for row in rows:
        assert row["status"] == "completed" and row["steps"] == "6"
        assert float(row["seconds"]) > 0
        assert float(row["best_val_loss"]) == pytest.approx(last_val_loss(folder / row["job"]))
        assert row["folder"] == str((folder / row["job"]).resolve())
    markdown = (folder / "summary.md").read_text()
    assert "2 jobs: 2 completed, 0 failed." in markdown
    assert markdown in result.stdout  # printed as well

    # scripts/compare.py on the sweep folder: the same runs, in the same order, on one PNG.
    table = compare([str(folder)], tmp_path / "loss.png")
    assert [line.split("|")[1].strip() for line in table.splitlines()[2:]] == [
        row["overrides"] for row in rows
    ]
    assert (tmp_path / "loss.png").stat().st_size > 10_000


@pytest.mark.slow
def test_a_failed_job_is_reported_and_the_other_still_finishes(tmp_path, story_file):
    # Job 0 asks for two DDP processes on this machine, which a sweep job refuses (Lightning
    # would start them by re-running the whole sweep); job 1 trains on one.
    result, folder = sweep(
        tmp_path, story_file, "hardware=ddp", "hardware.accelerator=cpu",
        "hardware.devices=2,1",
    )  # fmt: skip

    completed, failed = summary_rows(folder)
    assert (completed["status"], completed["overrides"]) == ("completed", "hardware.devices=1")
    assert (failed["status"], failed["overrides"]) == ("failed", "hardware.devices=2")
    assert "re-running the command line" in failed["error"]
    assert (folder / "1" / "checkpoints" / "last.ckpt").is_file()
    assert not (folder / "0" / "checkpoints").exists()
    assert "the sweep goes on" in result.stderr
    assert "ConfigError" in (folder / "0" / "train.log").read_text()  # the traceback, kept
    assert "2 jobs: 1 completed, 1 failed." in (folder / "summary.md").read_text()


@pytest.mark.slow
def test_an_optuna_search_fails_a_diverged_trial_writes_the_best_and_resumes(tmp_path, story_file):
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    search = ("hparams_search=optuna", f"hydra.sweeper.storage={storage}",
              "hydra.sweeper.study_name=test")  # fmt: skip
    diverge_first = ("+callbacks.diverge._target_=tests.training.callbacks_for_tests"
                     ".DivergeInSweepJob", "+callbacks.diverge.job=0")  # fmt: skip
    _, folder = sweep(tmp_path, story_file, *search, "hydra.sweeper.n_trials=2", *diverge_first)

    diverged = json.loads((folder / "0" / "result.json").read_text())
    assert diverged["status"] == "diverged"
    assert "the training loss became NaN or infinite at step 1;" in diverged["error"]
    assert not (folder / "0" / "checkpoints").exists()  # nothing saved from NaN weights
    # Stopped at its first validation (step 3: the CSV counts from 0), not after all 6 steps.
    assert max(int(row["step"]) for row in csv_rows(folder / "0")) == 2
    assert "2 jobs: 1 completed, 1 failed." in (folder / "summary.md").read_text()
    completed = json.loads((folder / "1" / "result.json").read_text())
    best = OmegaConf.load(folder / "optimization_results.yaml")
    assert best.best_value == pytest.approx(completed["best_val_loss"])
    assert set(best.best_params) == {
        "optimizer.lr", "optimizer.weight_decay", "optimizer.warmup_steps", "data.batch_size"
    }  # fmt: skip
    study = optuna.load_study(study_name="test", storage=storage)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.FAIL,
                                               optuna.trial.TrialState.COMPLETE]  # fmt: skip
    assert study.trials[1].params == dict(best.best_params)

    # The same command with the same storage continues the study.
    run_train_script(
        *TINY_SWEEP, f"data.path={tmp_path / 'stories.txt'}", *search,
        f"paths.log_dir={tmp_path / 'more'}", f"paths.cache_dir={tmp_path / 'cache'}",
        "hydra.sweeper.n_trials=1", cwd=tmp_path,
    )  # fmt: skip
    study = optuna.load_study(study_name="test", storage=storage)
    assert len(study.trials) == 3 and study.trials[2].state == optuna.trial.TrialState.COMPLETE
