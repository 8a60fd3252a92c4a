"""Loading a trained model from a checkpoint, which describes itself and is only ever data.

A tinylm checkpoint is Lightning's: the GPT's weights under `state_dict` (prefix `model.`),
and under `hyper_parameters` the model config and the tokenizer's state. It is read with
`torch.load(weights_only=True)`, whose unpickler builds only tensors and plain containers:
a file that asks for anything else (a function to call, a class to build) is refused before
any of it runs. Before that, the file's structure tells a file that is not a checkpoint at all,
or one whose save was cut short, from a whole one: torch.save writes a zip archive, whose
directory is at its end.

A 🤗 transformers GPT-2 (a folder that save_pretrained wrote, or a hub id) loads the same way,
through tinylm.interop.
"""

from __future__ import annotations

import logging
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch

from tinylm.errors import CheckpointError
from tinylm.interop import require_transformers
from tinylm.interop.sources import names_transformers_model
from tinylm.model import GPT, GPTConfig
from tinylm.model.config import ARCHITECTURE
from tinylm.runs.folder import BEST_CHECKPOINT_GLOB, LAST_CHECKPOINT, checkpoints_in
from tinylm.tokenizers import Tokenizer, tokenizer_from_state

log = logging.getLogger(__name__)

WEIGHTS_PREFIX = "model."
ZIP_SIGNATURE = b"PK\x03\x04"  # how every file torch.save writes begins


@dataclass
class LoadedCheckpoint:
    path: Path
    model: GPT  # in eval mode
    tokenizer: Tokenizer
    global_step: int | None
    data_config: dict | None  # the data it was trained on (None for checkpoints older than that)

    def describe(self) -> str:
        step = f"step {self.global_step:,}, " if self.global_step is not None else ""
        return (
            f"{self.path} ({step}{self.model.num_parameters() / 1e6:.2f}M parameters, "
            f"context {self.model.config.block_size}, tokenizer {self.tokenizer.describe()})"
        )


def resolve_checkpoint_path(ckpt_path: str | Path | None) -> Path:
    """A checkpoint file as given; for a run folder, its best checkpoint, else its last.

    A run folder keeps checkpoints in `checkpoints/`; the folder itself is searched when it
    has none. With several `best-*.ckpt` (save_top_k > 1), the lowest val loss in the name wins.
    A file that cannot be a whole checkpoint (checkpoint_file_problem: empty, cut short, not a
    checkpoint) is passed over, with a warning, for the next: a damaged best for last.ckpt.
    """
    if not ckpt_path:
        raise CheckpointError(
            "ckpt_path is not set; give a .ckpt file or a run folder, e.g. "
            "ckpt_path=outputs/train/runs/<run>."
        )
    path = Path(ckpt_path).expanduser()
    if path.is_file():
        return path
    if not path.is_dir():
        raise CheckpointError(f"No checkpoint at {path}; check ckpt_path.")
    candidates = checkpoints_in(path)
    if not candidates:
        raise CheckpointError(
            f"{path} holds no {BEST_CHECKPOINT_GLOB} or {LAST_CHECKPOINT}; give a checkpoint file "
            "or a run folder."
        )
    problems = []
    for candidate in candidates:
        problem = checkpoint_file_problem(candidate)
        if problem is None:
            for skipped in problems:
                log.warning(f"Passing over {skipped}; using {candidate.name}.")
            return candidate
        problems.append(f"{candidate.name}, which {problem}")
    raise CheckpointError(f"{path} holds no readable checkpoint: {'; '.join(problems)}.")


def checkpoint_file_problem(path: Path) -> str | None:
    """What keeps `path` from being a whole checkpoint, told from its structure without
    unpickling anything (a phrase that follows the file's name), or None when it looks whole."""
    try:
        with open(path, "rb") as handle:
            signature = handle.read(len(ZIP_SIGNATURE))
        if not signature:
            return "is empty (0 bytes), as a save that never finished leaves a file"
        if signature != ZIP_SIGNATURE:
            return "is not a checkpoint (torch.save writes a zip archive; this file is not one)"
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except zipfile.BadZipFile:
        return (
            "is incomplete: it ends before the archive's directory, as a save that was cut short "
            "(a full disk, a kill) leaves a file"
        )
    except OSError as error:
        return f"cannot be read ({error.strerror or error})"
    if not any(name.rpartition("/")[2] == "data.pkl" for name in names):
        return "is a zip archive but not a checkpoint (it holds no data.pkl)"
    return None


def read_checkpoint(path: Path) -> dict:
    """The checkpoint's contents as plain data, or a CheckpointError saying why not."""
    problem = checkpoint_file_problem(path)
    if problem is not None:
        raise CheckpointError(f"{path} {problem}; give another checkpoint.")
    try:
        # mmap: tensors are read from disk when used, so reading the config of a large
        # checkpoint costs little.
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as error:
        if "Weights only load failed" in str(error):
            raise CheckpointError(
                f"{path} asks to build objects other than tensors and plain data, which could "
                "run code; tinylm refuses to load it. Use checkpoints from sources you trust."
            ) from None
        raise CheckpointError(f"{path} is not a readable checkpoint ({error}).") from None
    except OSError as error:
        raise CheckpointError(f"Cannot read {path}: {error.strerror or error}.") from None
    except Exception as error:  # torch reports a damaged file in many ways
        raise CheckpointError(
            f"{path} is damaged: torch cannot read it ({type(error).__name__}: {error}); give "
            "another checkpoint."
        ) from None
    return checkpoint


def tinylm_hparams(checkpoint: dict, path: Path) -> dict:
    """The hyper-parameters of a tinylm checkpoint (with weights beside them), or a
    CheckpointError saying that `path` is not one."""
    hparams = checkpoint.get("hyper_parameters") if isinstance(checkpoint, dict) else None
    if (
        not isinstance(hparams, dict)
        or not isinstance(hparams.get("model_config"), dict)
        or not isinstance(hparams.get("tokenizer_state"), dict)
        or not isinstance(checkpoint.get("state_dict"), dict)
    ):
        raise CheckpointError(
            f"{path} is not a tinylm checkpoint: it lacks the model config, the tokenizer or the "
            "weights that scripts/train.py saves."
        )
    return hparams


def load_checkpoint(
    ckpt_path: str | Path | None, device: torch.device | str = "cpu"
) -> LoadedCheckpoint:
    """The model (eval mode, on `device`) and tokenizer of a tinylm checkpoint or run folder, or
    of a 🤗 transformers folder or hub id (GPT-2, Llama, Qwen3, NanoChat)."""
    if names_transformers_model(ckpt_path):
        require_transformers()
        from tinylm.interop.pretrained import load_transformers_model  # imports transformers

        model, tokenizer = load_transformers_model(str(ckpt_path))
        model = model.to(device).eval()
        return LoadedCheckpoint(
            Path(ckpt_path), model, tokenizer, global_step=None, data_config=None
        )
    path = resolve_checkpoint_path(ckpt_path)
    checkpoint = read_checkpoint(path)
    hparams = tinylm_hparams(checkpoint, path)
    state_dict = checkpoint["state_dict"]
    try:
        model = GPT(GPTConfig(**hparams["model_config"]))
    except TypeError as error:  # a field GPTConfig does not have
        raise CheckpointError(
            f"{path} carries a model config tinylm cannot read ({error})."
        ) from None
    weights = {
        name.removeprefix(WEIGHTS_PREFIX): tensor
        for name, tensor in state_dict.items()
        if name.startswith(WEIGHTS_PREFIX)
    }
    try:
        fit = model.load_state_dict(weights, strict=False)
    except RuntimeError:  # a tensor whose shape differs from the model's
        raise CheckpointError(
            f"{path}: the shapes of its weights do not match the model config it carries."
        ) from None
    if fit.missing_keys or fit.unexpected_keys:
        raise CheckpointError(
            f"{path}: its weights do not match the model config it carries (missing "
            f"{len(fit.missing_keys)}, unexpected {len(fit.unexpected_keys)} tensors)."
        )
    return LoadedCheckpoint(
        path=path,
        model=model.to(device).eval(),
        tokenizer=tokenizer_from_state(hparams["tokenizer_state"]),
        global_step=checkpoint.get("global_step"),
        data_config=hparams.get("data_config"),
    )


def check_checkpoint_fits(
    path: str | Path, model_config: dict, tokenizer: Tokenizer | None = None
) -> None:
    """Refuse, in one sentence, a checkpoint to resume from that is missing, unreadable, not
    tinylm's, or of another model or tokenizer than this run's (naming what differs).

    `model_config` may hold some of the fields only, and `tokenizer` may be None: a run checks
    what it knows before tokenizing its data, and the rest once the tokenizer exists.
    """
    path = resolve_checkpoint_path(path)
    hparams = tinylm_hparams(read_checkpoint(path), path)
    # Through GPTConfig, a setting older checkpoints lack takes the default they were trained with.
    checkpoint_config = GPTConfig(**hparams["model_config"]).to_dict()
    for key, value in model_config.items():
        theirs = checkpoint_config[key]
        if key in (*ARCHITECTURE, "vocab_size") and theirs != value:
            raise CheckpointError(
                f"{path} is of another model: the checkpoint has {key} {theirs}, this run "
                f"{value}; resume with the model settings it was trained with."
            )
    if tokenizer is None:
        return
    theirs = tokenizer_from_state(hparams["tokenizer_state"])
    if theirs.state_dict() != tokenizer.state_dict():
        raise CheckpointError(
            f"{path} was trained with another tokenizer ({theirs.describe()}) than this run's "
            f"({tokenizer.describe()}); resume with the tokenizer and data it was trained on."
        )
