"""Telling a 🤗 transformers model (a folder with config.json, or a hub id) from a tinylm
checkpoint or run folder, without importing transformers."""

from __future__ import annotations

from pathlib import Path

from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id


def names_transformers_model(ckpt_path: str | Path | None) -> bool:
    """A folder holding config.json (what save_pretrained writes; a run folder has none), or
    something that is not on this machine but could name a model on the 🤗 Hub."""
    if not ckpt_path:
        return False
    path = Path(ckpt_path).expanduser()
    if path.is_dir():
        return (path / "config.json").is_file()
    if path.exists() or path.suffix == ".ckpt":
        return False  # a file, or a checkpoint file that is missing: not the Hub's
    try:
        validate_repo_id(str(ckpt_path))
    except HFValidationError:
        return False
    return True
