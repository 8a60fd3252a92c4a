"""Run and sweep folders that no two jobs ever share.

Hydra names a folder after the second a run starts, so two runs started in the same second
(two terminals, a script, two sweeps) would write into one folder and overwrite each other's
checkpoints. conf/hydra/default.yaml therefore names folders with `${unique_dir:PARENT,NAME}`,
which claims PARENT/NAME with an atomic mkdir, or NAME_1, NAME_2, … when that is taken. mkdir
either creates the folder or fails, on one machine and on a shared file system alike, so no
two processes can claim the same one.

The processes of one distributed job started by torchrun or srun each compose the config
themselves and must all write into one folder, which they cannot agree on by claiming; they
use a folder named after the job instead (SLURM's job and step ids, or torchrun's run id).
Processes that Lightning starts itself (hardware=ddp on one machine) are handed the first
process's folder on their command line, so they never resolve it.

`resume=<run folder>` (or `latest`) makes the run folder that of the run being resumed
(`${run_dir:...}`), and `${run_path:FOLDER,NAME}` names a file of a run folder's layout
(tinylm.runs.folder) in the conf files.
"""

from __future__ import annotations

import itertools
import os
import sys
import warnings
from pathlib import Path
from typing import Any, NoReturn

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from tinylm.errors import ConfigError, TinyLMError, WriteError
from tinylm.runs.folder import RunFolder
from tinylm.utils.files import write_atomically, write_error

TORCHRUN_WITHOUT_ID = "none"  # torchrun's run id when it was given no --rdzv-id
LOG_FOLDER_KEY = "paths.log_dir"  # the setting under which run and sweep folders are made


def unique_dir(parent: str, name: str) -> str:
    """Create and return a folder under `parent` that no other job uses.

    A folder that cannot be created (a read-only or full disk, a file in the way) ends the
    command with one sentence: raised here, in Hydra's set-up, an error would reach the user
    as a traceback."""
    parent_path = Path(parent)
    try:
        job_id = distributed_job_id()
        if job_id is not None:
            folder = parent_path / job_id
            folder.mkdir(parents=True, exist_ok=True)
            return str(folder)
        parent_path.mkdir(parents=True, exist_ok=True)
        for attempt in itertools.count():
            folder = parent_path / (name if attempt == 0 else f"{name}_{attempt}")
            try:
                folder.mkdir()
                return str(folder)
            except FileExistsError:
                continue  # claimed by another job: try the next name
    except OSError as error:
        exit_in_hydra_setup(write_error(error, parent_path, LOG_FOLDER_KEY))


def distributed_job_id() -> str | None:
    """An id shared by all processes of a job that srun or torchrun started, else None."""
    if int(os.environ.get("SLURM_STEP_NUM_TASKS", "1")) > 1:
        return f"slurm-{os.environ['SLURM_JOB_ID']}.{os.environ['SLURM_STEP_ID']}"
    run_id = os.environ.get("TORCHELASTIC_RUN_ID")
    if run_id is None or int(os.environ.get("WORLD_SIZE", "1")) == 1:
        return None
    if run_id == TORCHRUN_WITHOUT_ID:
        warnings.warn(
            "torchrun was started without --rdzv-id, so its processes cannot share one run "
            "folder: each makes its own, and rank 0's gets the checkpoints and logs. Give "
            "torchrun --rdzv-id=<a unique id> (or --standalone on one machine).",
            stacklevel=2,
        )
        return None
    return f"torchrun-{run_id}"


def run_dir(resume: str | None, runs_folder: str, name: str) -> str:
    """hydra.run.dir: the folder of the run that `resume=` names, else a new one (unique_dir)."""
    if resume:
        try:
            return str(RunFolder.to_resume(resume, runs_folder).path)
        except ConfigError:
            # The train command says what is wrong; raised here, in Hydra's set-up, it would
            # reach the user as a traceback.
            pass
    return unique_dir(runs_folder, name)


def hydra_output_subdir(resume: str | None, output_dir: str, _root_: DictConfig) -> None:
    """hydra.output_subdir, which Hydra reads just before it records an invocation in the run
    folder's .hydra/: the record is written here instead, each file atomically, and Hydra is told
    to write none (None). Hydra's own writes are not atomic, and a full or read-only disk there
    would reach the user as a traceback; here it is one sentence.

    Nothing is recorded in the folder of a run being resumed, whose own config and overrides the
    train command updates once it has checked them, nor in one that holds a run already, which
    the train command refuses — so a refused command leaves the run folder as it was.
    """
    run = RunFolder(output_dir)
    if resume or run.holds_a_run():
        return None
    task = OmegaConf.masked_copy(_root_, [key for key in _root_ if key != "hydra"])
    try:
        # What Hydra writes: the composed config, its own settings, the command-line overrides.
        write_atomically(run.config, OmegaConf.to_yaml(task), LOG_FOLDER_KEY)
        write_atomically(
            run.hydra_config,
            OmegaConf.to_yaml(OmegaConf.masked_copy(_root_, "hydra")),
            LOG_FOLDER_KEY,
        )
        write_atomically(
            run.overrides, OmegaConf.to_yaml(_root_.hydra.overrides.task), LOG_FOLDER_KEY
        )
    except WriteError as error:
        exit_in_hydra_setup(error)
    return None


class MakeRunFolder(Callback):
    """Hydra makes the run's (or the sweep's) folder itself, before any of tinylm's code runs; a
    folder named on the command line (hydra.run.dir=, hydra.sweep.dir=) that cannot be made
    would reach the user as Hydra's traceback. Made here first, in Hydra's callback that comes
    before, it is one sentence. (Folders under paths.log_dir are claimed by unique_dir.)"""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        make_folder(config.hydra.run.dir, "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        make_folder(config.hydra.sweep.dir, "hydra.sweep.dir")


def make_folder(folder: str, key: str) -> None:
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
    except OSError as error:
        exit_in_hydra_setup(write_error(error, Path(folder), key))


def exit_in_hydra_setup(error: TinyLMError) -> NoReturn:
    """End the command with `error`'s sentence. Raised in Hydra's set-up (a resolver of
    conf/hydra), an error would reach the user as Hydra's traceback; SystemExit passes through."""
    print(f"error: {error}", file=sys.stderr)
    raise SystemExit(1)


def run_path(folder: str, name: str) -> str:
    """A file or folder of the run folder by its name in RunFolder's layout: the conf files
    write ${run_path:${paths.output_dir},loss_curve} rather than spelling the file's name."""
    return str(getattr(RunFolder(folder), name))


RESOLVERS = {
    "unique_dir": unique_dir,
    "run_path": run_path,
    "run_dir": run_dir,
}


def register_resolvers() -> None:
    # Cached, like Hydra's ${now:}: every later look-up of the same folder in this config (and
    # in the per-job configs Hydra copies the cache into) returns the folder claimed first.
    for name, resolver in RESOLVERS.items():
        OmegaConf.register_new_resolver(name, resolver, use_cache=True, replace=True)
    # Reads the whole config (_root_), which OmegaConf's cache cannot key on; Hydra reads it
    # once per job.
    OmegaConf.register_new_resolver("hydra_output_subdir", hydra_output_subdir, replace=True)
