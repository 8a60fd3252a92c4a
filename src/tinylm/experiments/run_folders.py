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
"""

from __future__ import annotations

import itertools
import os
import warnings
from pathlib import Path

from omegaconf import OmegaConf

RESOLVER = "unique_dir"
TORCHRUN_WITHOUT_ID = "none"  # torchrun's run id when it was given no --rdzv-id


def unique_dir(parent: str, name: str) -> str:
    """Create and return a folder under `parent` that no other job uses."""
    parent_path = Path(parent)
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


def register_resolver() -> None:
    # Cached, like Hydra's ${now:}: every later look-up of the same folder in this config (and
    # in the per-job configs Hydra copies the cache into) returns the folder claimed first.
    OmegaConf.register_new_resolver(RESOLVER, unique_dir, use_cache=True, replace=True)
