"""The log file of every command: a disk it cannot be written to is one line, not a traceback
per record."""

import logging

import pytest

from tinylm.utils.log_file import LogFile


@pytest.mark.parametrize("where", ["a full disk", "a folder that is not there"])
def test_a_log_file_that_cannot_be_written_is_one_line_and_the_terminal_log_goes_on(
    tmp_path, capsys, where
):
    path = "/dev/full" if where == "a full disk" else str(tmp_path / "missing" / "train.log")
    logger = logging.getLogger(f"tests.log_file.{where}")
    logger.propagate = False
    file_handler = LogFile(path)
    logger.handlers = [file_handler, logging.StreamHandler()]
    for number in range(3):
        logger.warning("line %d", number)
    file_handler.close()

    stderr = capsys.readouterr().err
    reason = "No space left on device" if where == "a full disk" else "No such file or directory"
    assert stderr.splitlines() == [
        f"warning: {reason} while writing {path}; the log goes on in the terminal only.",
        "line 0", "line 1", "line 2",
    ]  # fmt: skip
    assert "Logging error" not in stderr


def test_a_log_file_on_a_good_disk_holds_every_record(tmp_path):
    path = tmp_path / "train.log"
    logger = logging.getLogger("tests.log_file.good")
    logger.propagate = False
    handler = LogFile(str(path))
    logger.handlers = [handler]
    logger.warning("first")
    logger.warning("second")
    handler.close()
    assert path.read_text().splitlines() == ["first", "second"]
