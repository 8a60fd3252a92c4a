"""Reading what wandb wrote offline, and an environment in which it finds no API key."""

import struct
from pathlib import Path

import wandb
from wandb.proto import wandb_internal_pb2

BLOCK = 32 * 1024  # wandb's run file is a LevelDB-style log of 32 KiB blocks
FULL, LAST = 1, 4


def wandb_records(path: Path) -> list:
    """The protobuf records of an offline run's run-<id>.wandb file (what `wandb sync` uploads)."""
    data = path.read_bytes()
    assert data[:4] == b":W&B"
    records, pending, position = [], b"", 7  # after the file header
    while position + 7 <= len(data):
        if BLOCK - position % BLOCK < 7:  # a block's tail too short for a header is padding
            position += BLOCK - position % BLOCK
            continue
        _checksum, length, kind = struct.unpack("<IHB", data[position : position + 7])
        pending += data[position + 7 : position + 7 + length]
        position += 7 + length
        if kind in (FULL, LAST):
            records.append(wandb_internal_pb2.Record.FromString(pending))
            pending = b""
    return records


def item_key(item) -> str:
    return item.key or "/".join(item.nested_key)  # "val/loss" arrives as ["val", "loss"]


def offline_run(run_folder: Path) -> tuple[str, list]:
    # wandb's service process writes the file on its own time, also after run.finish() returned
    # (seen: a half-written last record); shutting the service down waits for it. A run in a
    # subprocess that has ended is complete already.
    wandb.teardown()
    (run_file,) = (run_folder / "wandb").glob("offline-run-*/run-*.wandb")
    return run_file.stem.removeprefix("run-"), wandb_records(run_file)


def environment_without_api_key(tmp_path: Path) -> dict[str, str | None]:
    """Environment variables (None: unset) that leave wandb nowhere to find an API key, and
    keep its own files under tmp_path."""
    home = tmp_path / "wandb-home"
    return {
        "WANDB_API_KEY": None,
        "WANDB_MODE": None,
        "WANDB_IDENTITY_TOKEN_FILE": None,
        "NETRC": str(home / "no-netrc"),
        "WANDB_CONFIG_DIR": str(home / "config"),
        "WANDB_CACHE_DIR": str(home / "cache"),
        "WANDB_DATA_DIR": str(home / "data"),
    }
