"""wandb without an API key: offline runs in the run folder, resumed into the same wandb run."""

import json
import logging

import pytest
import torch

from tests.conftest import compose_train
from tests.training.wandb_files import environment_without_api_key, item_key, offline_run
from tinylm.errors import ConfigError
from tinylm.training import fit
from tinylm.training.wandb_logger import RUN_ID_KEY, wandb_logger


@pytest.fixture
def no_wandb_api_key(tmp_path, monkeypatch):
    for name, value in environment_without_api_key(tmp_path).items():
        if value is None:
            monkeypatch.setenv(name, "")
            monkeypatch.delenv(name)  # after setenv, so that monkeypatch restores what was there
        else:
            monkeypatch.setenv(name, value)


def test_uploading_checkpoints_without_an_api_key_is_a_clear_error(tmp_path, no_wandb_api_key):
    with pytest.raises(
        ConfigError, match="log_model uploads checkpoints, which needs wandb online"
    ):
        wandb_logger(project="tinylm", save_dir=str(tmp_path), log_model=True)


@pytest.mark.slow
def test_wandb_offline_run_holds_history_and_config_and_a_resumed_run_keeps_its_id(
    tmp_path, story_file, no_wandb_api_key, caplog
):
    caplog.set_level(logging.INFO, logger="tinylm.training.wandb_logger")
    common = ("model=tiny", "tokenizer=char", "data=text", f"data.path={story_file}", "logger=many",
              "trainer.max_steps=8", "trainer.val_check_interval=2", "trainer.limit_val_batches=2",
              "logger.wandb.tags=[test]")  # fmt: skip
    stop = ("+callbacks.stop._target_=tests.training.callbacks_for_tests.StopAtStep",
            "+callbacks.stop.step=4")  # fmt: skip
    fit(compose_train(tmp_path / "first", *common, *stop))

    first = tmp_path / "first" / "run"
    assert f"upload it later with `wandb sync {first}/wandb/offline-run-*`" in caplog.text
    run_id, records = offline_run(first)
    checkpoint = first / "checkpoints" / "last.ckpt"
    assert torch.load(checkpoint, weights_only=True)[RUN_ID_KEY] == run_id
    history = [{item_key(item): json.loads(item.value_json) for item in r.history.item}
               for r in records if r.HasField("history")]  # fmt: skip
    val_steps = [h["trainer/global_step"] for h in history if "val/loss" in h]
    assert val_steps == [1, 3]  # validations after steps 2 and 4 (logged as Lightning counts)
    config = {item_key(item): json.loads(item.value_json)
              for r in records if r.HasField("config") for item in r.config.update}  # fmt: skip
    assert config["model"]["n_layer"] == 2 and config["trainer"]["max_steps"] == 8  # resolved cfg
    assert config["paths"]["output_dir"] == str(first)
    assert "model_config" in config  # the LightningModule's hyper-parameters, too
    (run,) = [r.run for r in records if r.HasField("run")]
    assert run.job_type == "train" and list(run.tags) == ["test"] and run.project == "tinylm"
    assert (first / "csv" / "metrics.csv").is_file() and list(
        (first / "tensorboard").glob("events*")
    )

    fit(compose_train(tmp_path / "resumed", *common, f"ckpt_path={checkpoint}"))
    resumed_id, records = offline_run(tmp_path / "resumed" / "run")
    assert resumed_id == run_id
    steps = [json.loads(item.value_json) for r in records if r.HasField("history")
             for item in r.history.item if item_key(item) == "trainer/global_step"]  # fmt: skip
    assert min(steps) >= 4  # it continues where the first run stopped
