"""A learner's terminal shows what matters: a short run and its resume print tinylm's lines
(run folder, data, model, samples, results) and none of the libraries' noise."""

import logging
import re
import warnings

import pytest

from tests.conftest import run_train_script
from tinylm.utils.quiet_logs import quiet_library_noise

NOISE = [
    "weights_only",  # Lightning announcing its default at every save
    "litlogger",  # Lightning's advertisement
    "deprecated",  # deprecations inside Lightning and torch
    "Checkpoint directory",  # "... exists and is not empty" on resume
    "Warning",  # any other warning
]


@pytest.mark.slow
def test_a_short_run_and_its_resume_print_no_library_noise(story_file, tmp_path):
    common = [
        "model=tiny", "tokenizer=char", "data=text", f"data.path={story_file}",
        "data.batch_size=4", "trainer.val_check_interval=10", "trainer.limit_val_batches=2",
        f"paths.log_dir={tmp_path / 'outputs'}", f"paths.cache_dir={tmp_path / 'cache'}",
    ]  # fmt: skip
    first = run_train_script(*common, "trainer.max_steps=20", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    folder = re.search(r"^Run folder: (.+)$", first.stderr, re.MULTILINE).group(1)
    resumed = run_train_script(f"resume={folder}", "trainer.max_steps=30", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr

    for run in (first, resumed):
        assert "Samples at step" in run.stderr and "val/loss: final" in run.stderr
        for noise in NOISE:
            assert noise not in run.stderr, f"{noise!r} in:\n{run.stderr}"
    assert "Samples at step 30" in resumed.stderr  # it went on from step 20


def test_only_the_named_messages_are_dropped(recwarn, caplog):
    quiet_library_noise()
    quiet_library_noise()  # twice: still one filter
    warnings.warn("Checkpoint directory /x exists and is not empty.", UserWarning, stacklevel=1)
    warnings.warn(
        "`isinstance(treespec, LeafSpec)` is deprecated, use …", FutureWarning, stacklevel=1
    )
    warnings.warn("Something else is wrong", UserWarning, stacklevel=1)
    assert [str(w.message) for w in recwarn] == ["Something else is wrong"]
    rank_zero = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    assert len(rank_zero.filters) == 1
    with caplog.at_level(logging.INFO, logger=rank_zero.name):
        rank_zero.info("💡 Tip: For seamless cloud logging, try installing [litlogger]")
        rank_zero.info("GPU available: False, used: False")
    assert caplog.messages == ["GPU available: False, used: False"]
