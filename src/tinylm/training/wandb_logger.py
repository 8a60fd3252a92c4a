"""Weights & Biases: a WandbLogger named and grouped after the Hydra job, offline when there is
no API key, and continuing the same wandb run when training resumes from a checkpoint."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import Logger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only

from tinylm.errors import ConfigError
from tinylm.utils.hydra import in_sweep

log = logging.getLogger(__name__)
RUN_ID_KEY = "wandb_run_id"  # where checkpoints keep the id of the wandb run that wrote them


def wandb_logger(
    project: str,
    save_dir: str,
    entity: str | None = None,
    group: str | None = None,
    tags: list[str] | None = None,
    job_type: str = "train",
    name: str | None = None,
    offline: bool | None = None,
    log_model: bool | str = False,
    resume_from: str | None = None,
    **kwargs: Any,
) -> WandbLogger:
    """Lightning's WandbLogger, with what a Hydra job knows filled in:

    - name: the job's command-line overrides (`model=tiny,optimizer.lr=0.001`);
    - group: the sweep's folder name, for every job of a sweep, so the dashboard compares them;
    - offline: when no API key is configured (and WANDB_MODE does not say otherwise);
    - id: the wandb run stored in `resume_from`, the checkpoint training resumes from.
    """
    job = HydraConfig.get() if HydraConfig.initialized() else None
    if name is None and job is not None:
        name = job.job.override_dirname or None
    if group is None and in_sweep():
        group = Path(job.sweep.dir).name
    if offline is None:
        offline = "WANDB_MODE" not in os.environ and not has_api_key()
    if offline and log_model:
        raise ConfigError(
            "logger.wandb.log_model uploads checkpoints, which needs wandb online: run "
            "`wandb login` (or set WANDB_API_KEY), or set logger.wandb.log_model=false."
        )
    if offline:
        rank_zero_only(log.info)(
            f"wandb: logging offline into {save_dir}/wandb (no API key: `wandb login` or "
            f"WANDB_API_KEY); upload it later with `wandb sync {save_dir}/wandb/offline-run-*`"
        )
    return WandbLogger(
        project=project,
        entity=entity,
        group=group,
        tags=list(tags or []),
        job_type=job_type,
        name=name,
        save_dir=save_dir,
        # wandb.init's own mode, not WandbLogger(offline=True): that sets WANDB_MODE=dryrun,
        # which recent wandb releases no longer read as offline.
        mode="offline" if offline else None,
        log_model=log_model,
        id=run_id_in_checkpoint(resume_from) if resume_from else None,
        **kwargs,
    )


def has_api_key() -> bool:
    import wandb  # imported when wandb is used, not by every run

    return wandb.login(prompt=False, verify=False)


def run_id_in_checkpoint(path: str) -> str | None:
    if not Path(path).is_file():
        return None  # Lightning reports a missing checkpoint when training starts
    # mmap: the tensors stay on disk; only the small entries are read.
    checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    return checkpoint.get(RUN_ID_KEY)


class WandbRunIdInCheckpoint(Callback):
    """Stores the wandb run's id in every checkpoint, so that training resumed from one logs
    into the same wandb run. Does nothing when no WandbLogger is in use."""

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger) and logger.version is not None:
                checkpoint[RUN_ID_KEY] = logger.version


def finish_wandb_run(loggers: list[Logger], failed: bool) -> None:
    """Close the wandb run that a WandbLogger of `loggers` started, if any."""
    if not any(isinstance(logger, WandbLogger) for logger in loggers):
        return
    import wandb

    if wandb.run is not None:
        wandb.run.finish(exit_code=1 if failed else 0)
