"""Each command's settings schema on the real configs: what it says about settings it accepts
but cannot honour as given."""

import logging

from tests.conftest import compose_train
from tinylm.commands.settings import TrainSettings
from tinylm.schema import check_settings


def test_a_warmup_longer_than_a_tenth_of_the_run_is_said_in_one_line(tmp_path, caplog):
    cfg = compose_train(tmp_path, "data=text", "data.path=corpus.txt", "trainer.max_steps=300",
                        "optimizer.warmup_steps=500")  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="tinylm.commands.settings"):
        check_settings(cfg, TrainSettings)
    assert caplog.messages == [
        "optimizer.warmup_steps=500 is more than a tenth of trainer.max_steps=300: warming up "
        "for 30 steps (10% of the run)."
    ]
    caplog.clear()
    cfg.optimizer.warmup_steps = 30
    with caplog.at_level(logging.WARNING, logger="tinylm.commands.settings"):
        check_settings(cfg, TrainSettings)
    assert caplog.messages == []
