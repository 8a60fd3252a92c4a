"""The table that ends a sweep: every job's overrides, best val/loss, steps, time, folder and
status, best first, printed and written to the sweep folder as summary.csv and summary.md."""

from __future__ import annotations

import csv
import datetime
import io
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from tinylm.experiments.tables import loss_text, markdown_table, varying_overrides
from tinylm.runs.folder import RunFolder, runs_under
from tinylm.runs.results import COMPLETED, DIVERGED, FAILED
from tinylm.utils.files import write_atomically
from tinylm.utils.hydra import in_sweep

HEADER = ["job", "status", "best val/loss", "steps", "time", "overrides", "folder"]
NO_RESULT = "no result"
SWEEP_FOLDER_KEY = "hydra.sweep.dir"  # named when the summary cannot be written
CSV_HEADER = ["job", "status", "best_val_loss", "steps", "seconds", "overrides", "folder",
              "final_val_loss", "error"]  # fmt: skip


class SweepSummary(Callback):
    """A Hydra callback (conf/hydra/default.yaml) that reads the result.json each job wrote into
    its folder. The summary is rewritten after every job, so that a sweep that is interrupted
    or that its sweeper ends early still leaves one, and printed when the sweep ends."""

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if in_sweep():
            write_summary(Path(config.hydra.sweep.dir))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        # print, not logging: in this process logging still writes into the last job's log file.
        print(write_summary(Path(config.hydra.sweep.dir)))


def read_jobs(sweep_dir: Path) -> list[dict]:
    """What each job folder of the sweep (one with Hydra's .hydra/) recorded in result.json; a
    job that has not written one yet is still running, or was killed (a cluster's time limit)."""
    jobs = []
    for run in runs_under(sweep_dir, "hydra_config"):
        result = run.read_result()
        if result is not None:
            jobs.append(result)
            continue
        jobs.append({
            "job": OmegaConf.load(run.hydra_config).hydra.job.num,
            "overrides": list(OmegaConf.load(run.overrides)),
            "folder": str(run.path.resolve()),
            "status": NO_RESULT,
            "error": f"no {run.result.name}: the job is still running, or was killed",
        })  # fmt: skip
    return jobs


def write_summary(sweep_dir: Path) -> str:
    """Write summary.csv and summary.md into `sweep_dir`; return the Markdown."""
    jobs = sorted(read_jobs(sweep_dir), key=rank_key)
    labels = [" ".join(label) for label in varying_overrides([job["overrides"] for job in jobs])]

    table = io.StringIO()
    writer = csv.writer(table)
    writer.writerow(CSV_HEADER)
    for job, label in zip(jobs, labels, strict=True):
        writer.writerow(
            [job["job"], job["status"], job.get("best_val_loss"), job.get("steps"),
             job.get("seconds"), label, job["folder"], job.get("final_val_loss"), job.get("error")]
        )  # fmt: skip
    write_atomically(sweep_dir / "summary.csv", table.getvalue(), SWEEP_FOLDER_KEY)

    rows = [
        [str(job["job"]), job["status"], loss_text(job.get("best_val_loss")),
         str(job.get("steps", "-")), duration_text(job.get("seconds")), label,
         relative(job["folder"], sweep_dir)]
        for job, label in zip(jobs, labels, strict=True)
    ]  # fmt: skip
    failed = [job for job in jobs if job["status"] in (FAILED, DIVERGED)]
    unfinished = [job for job in jobs if job["status"] == NO_RESULT]
    completed = len(jobs) - len(failed) - len(unfinished)
    counts = f"{len(jobs)} jobs: {completed} completed, {len(failed)} failed"
    counts += f", {len(unfinished)} without a result." if unfinished else "."
    lines = [f"# Sweep {sweep_dir}", "", counts, "", markdown_table(HEADER, rows)]
    if failed or unfinished:
        log = RunFolder("").log.name
        lines += ["", f"Not completed (a failed job's {log} has its traceback):", ""]
        lines += [f"- job {job['job']}: {job['error']}" for job in failed + unfinished]
    markdown = "\n".join(lines) + "\n"
    write_atomically(sweep_dir / "summary.md", markdown, SWEEP_FOLDER_KEY)
    return markdown


def rank_key(job: dict) -> tuple:
    """Completed jobs by best val/loss, then the others, in job order."""
    loss = job.get("best_val_loss")
    completed = job["status"] == COMPLETED and loss is not None
    return (not completed, loss if completed else 0.0, job["job"] if job["job"] is not None else -1)


def duration_text(seconds: float | None) -> str:
    return "-" if seconds is None else str(datetime.timedelta(seconds=round(seconds)))


def relative(folder: str, root: Path) -> str:
    try:
        return str(Path(folder).relative_to(root.resolve()))
    except ValueError:
        return folder
