"""Samples generated at every validation: in samples.jsonl, on TensorBoard, to wandb."""

import json
import logging

from lightning.pytorch.loggers import WandbLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.conftest import compose_train
from tinylm.training import fit
from tinylm.training.callbacks import log_samples


def test_each_validation_logs_samples_of_the_fixed_prompts(tmp_path, story_file, caplog):
    cfg = compose_train(
        tmp_path, "model=tiny", "data=text", "tokenizer=char", f"data.path={story_file}",
        "logger=tensorboard", "trainer.max_steps=40", "trainer.val_check_interval=20",
        "trainer.limit_val_batches=1", "callbacks.progress_bar=null",
        "callbacks.generation_samples.max_new_tokens=12",
        'callbacks.generation_samples.prompts=["Once upon a time", "", "Tom in Zürich"]',
    )  # fmt: skip
    with caplog.at_level(logging.INFO, logger="tinylm.training.callbacks"):
        fit(cfg)
    run = tmp_path / "run"

    # Not at the sanity check before training; after each of the two validations.
    records = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
    assert [(r["step"], r["prompt"]) for r in records] == [
        (20, "Once upon a time"), (20, ""), (40, "Once upon a time"), (40, ""),
    ]  # fmt: skip
    assert all(len(r["text"]) <= 12 for r in records)  # characters: one token each
    assert "leave out the prompt 'Tom in Zürich'" in caplog.text  # 'ü' is not in the corpus
    assert f"'Once upon a time' -> {records[2]['text']!r}" in caplog.text

    events = EventAccumulator(str(run / "tensorboard")).Reload()
    logged = events.Tensors("samples/0/text_summary")
    assert [event.step for event in logged] == [20, 40]
    last_text = logged[-1].tensor_proto.string_val[0].decode()
    assert "Once upon a time" + records[2]["text"] in last_text


def test_wandb_receives_the_samples_as_a_table(tmp_path, monkeypatch):
    logger = WandbLogger(save_dir=str(tmp_path), offline=True)
    tables = []
    monkeypatch.setattr(logger, "log_text", lambda **table: tables.append(table))
    log_samples([logger], 7, [("Once", " upon a time"), ("", "The end.")])
    assert tables == [
        {
            "key": "samples",
            "columns": ["step", "prompt", "text"],
            "data": [[7, "Once", " upon a time"], [7, "", "The end."]],
            "step": 7,
        }
    ]
