"""Atomic writes: a file is replaced whole or left as it was, whatever stops the writer."""

import errno
import json
import os

import pytest

from tinylm.errors import WriteError
from tinylm.utils import files
from tinylm.utils.files import append_jsonl, atomic_write, write_atomically


def test_a_write_replaces_the_file_whole_and_leaves_nothing_beside_it(tmp_path):
    path = tmp_path / "deeper" / "result.json"
    write_atomically(path, "old\n")
    write_atomically(path, "new\n")
    assert path.read_text() == "new\n"
    assert os.listdir(path.parent) == ["result.json"]
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # as open() would create it


def test_a_writer_that_fails_midway_leaves_the_previous_file_as_it_was(tmp_path):
    path = tmp_path / "result.json"
    path.write_text("the previous result\n")
    with pytest.raises(RuntimeError, match="stopped"), atomic_write(path) as handle:
        handle.write("half of the new")
        handle.flush()
        raise RuntimeError("stopped")
    assert path.read_text() == "the previous result\n"
    assert os.listdir(tmp_path) == ["result.json"]


@pytest.mark.parametrize(
    "folder_key, advice",
    [(None, "point paths.output_dir elsewhere"), ("output_file", "point output_file elsewhere")],
)
def test_a_full_disk_is_one_sentence_naming_the_file_and_the_setting(tmp_path, folder_key, advice):
    path = tmp_path / "loss_curve.png"
    path.write_bytes(b"previous")
    keyword = {} if folder_key is None else {"folder_key": folder_key}
    with pytest.raises(WriteError) as error, atomic_write(path, "wb", **keyword) as handle:
        handle.write(b"partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert str(error.value) == (
        f"No space left on device while saving {path}: free space or {advice}."
    )
    assert path.read_bytes() == b"previous" and os.listdir(tmp_path) == ["loss_curve.png"]


def test_a_folder_that_cannot_be_written_is_a_write_error(tmp_path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where a folder should be")
    with pytest.raises(WriteError) as error:
        write_atomically(blocker / "result.json", "{}")
    assert str(error.value) == (
        f"{blocker} is a file where a folder should be (saving {blocker / 'result.json'}): move "
        "it away or point paths.output_dir elsewhere."
    )


def test_appended_records_follow_the_earlier_ones(tmp_path):
    path = tmp_path / "samples.jsonl"
    append_jsonl(path, [{"step": 1, "text": "é"}])
    append_jsonl(path, [{"step": 2, "text": "a"}, {"step": 2, "text": "b"}])
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [
        {"step": 1, "text": "é"}, {"step": 2, "text": "a"}, {"step": 2, "text": "b"}
    ]  # fmt: skip


def test_an_append_cut_short_leaves_no_half_line(tmp_path, monkeypatch):
    path = tmp_path / "samples.jsonl"
    append_jsonl(path, [{"step": 1}])
    before = path.read_bytes()

    def copy_then_disk_full(source, target):
        target.write(source.read())
        target.write(b'{"step": 2, "te')
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files.shutil, "copyfileobj", copy_then_disk_full)
    with pytest.raises(WriteError, match="No space left on device"):
        append_jsonl(path, [{"step": 2, "text": "lost"}])
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["samples.jsonl"]
