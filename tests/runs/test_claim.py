"""No two jobs share a folder: the ${unique_dir:...} resolver of conf/hydra/default.yaml."""

import multiprocessing

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.utils import setup_globals
from omegaconf import OmegaConf

from tests.conftest import CONF_DIR
from tinylm.runs.claim import unique_dir

SECOND = "2026-01-01_12-00-00"


def test_jobs_started_in_the_same_second_claim_different_folders(tmp_path):
    folders = [unique_dir(str(tmp_path), SECOND) for _ in range(3)]
    assert [f.rsplit("/", 1)[1] for f in folders] == [SECOND, f"{SECOND}_1", f"{SECOND}_2"]
    assert all((tmp_path / name).is_dir() for name in (SECOND, f"{SECOND}_1", f"{SECOND}_2"))


def claim(parent: str) -> str:
    return unique_dir(parent, SECOND)


def test_processes_claiming_at_once_never_share_a_folder(tmp_path):
    with multiprocessing.get_context("fork").Pool(8) as pool:
        folders = pool.map(claim, [str(tmp_path)] * 32)
    assert len(set(folders)) == 32


@pytest.fixture
def freeze_clock():
    """Makes Hydra's ${now:} answer the same second every time, as for two commands started
    together; Hydra's own resolver is put back afterwards."""
    yield lambda: OmegaConf.register_new_resolver(
        "now", lambda pattern: SECOND, replace=True, use_cache=True
    )
    setup_globals()


def test_two_train_commands_in_the_same_second_get_their_own_run_and_sweep_folders(
    tmp_path, freeze_clock
):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        # Composed twice, as two `python scripts/train.py` processes would compose it.
        configs = [
            compose("train", [f"paths.log_dir={tmp_path}"], return_hydra_config=True)
            for _ in range(2)
        ]
    freeze_clock()  # after initialize_config_dir, which registers Hydra's resolvers again
    runs = [config.hydra.run.dir for config in configs]
    sweeps = [config.hydra.sweep.dir for config in configs]
    assert runs == [f"{tmp_path}/train/runs/{SECOND}", f"{tmp_path}/train/runs/{SECOND}_1"]
    assert sweeps == [f"{tmp_path}/train/multiruns/{SECOND}",
                      f"{tmp_path}/train/multiruns/{SECOND}_1"]  # fmt: skip
    assert configs[0].hydra.run.dir == runs[0]  # looked up again: the same folder, not a third


@pytest.mark.parametrize(
    "environment, folder",
    [
        ({"SLURM_STEP_NUM_TASKS": "8", "SLURM_JOB_ID": "4242", "SLURM_STEP_ID": "0"},
         "slurm-4242.0"),
        ({"TORCHELASTIC_RUN_ID": "job-17", "WORLD_SIZE": "4"}, "torchrun-job-17"),
    ],
)  # fmt: skip
def test_the_processes_of_one_distributed_job_share_a_folder_named_after_it(
    tmp_path, monkeypatch, environment, folder
):
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    # Each rank composes the config itself, each in its own second.
    first, second = unique_dir(str(tmp_path), SECOND), unique_dir(str(tmp_path), "later")
    assert first == second == str(tmp_path / folder)


def test_torchrun_without_a_job_id_warns_and_gives_each_process_a_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "none")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.warns(UserWarning, match="--rdzv-id"):
        folders = {unique_dir(str(tmp_path), SECOND) for _ in range(2)}
    assert len(folders) == 2
