"""The sweep summary, from the folders a sweep leaves behind."""

import csv
import json

from omegaconf import OmegaConf

from tinylm.experiments.summary import write_summary


def job_folder(sweep, number, overrides, result=None):
    """A job folder as Hydra and train_job leave it; no result.json while the job runs."""
    folder = sweep / str(number)
    (folder / ".hydra").mkdir(parents=True)
    OmegaConf.save(OmegaConf.create(overrides), folder / ".hydra" / "overrides.yaml")
    hydra = {"hydra": {"job": {"num": number}}}
    OmegaConf.save(OmegaConf.create(hydra), folder / ".hydra" / "hydra.yaml")
    if result is not None:
        record = {"job": number, "overrides": overrides, "folder": str(folder), **result}
        (folder / "result.json").write_text(json.dumps(record))


def test_the_summary_ranks_completed_jobs_and_lists_failed_and_unfinished_ones(tmp_path):
    common = "model=tiny"
    job_folder(
        tmp_path,
        0,
        [common, "optimizer.lr=0.1"],
        {"status": "failed", "error": "no finite val/loss", "seconds": 3.0},
    )
    job_folder(
        tmp_path,
        1,
        [common, "optimizer.lr=0.01"],
        {"status": "completed", "best_val_loss": 2.5, "steps": 100, "seconds": 61.0},
    )
    job_folder(
        tmp_path,
        2,
        [common, "optimizer.lr=0.001"],
        {"status": "completed", "best_val_loss": 2.25, "steps": 100, "seconds": 59.6},
    )
    job_folder(tmp_path, 3, [common, "optimizer.lr=0.0001"])  # fmt: skip

    markdown = write_summary(tmp_path)

    with open(tmp_path / "summary.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["job"], r["status"], r["overrides"]) for r in rows] == [
        ("2", "completed", "optimizer.lr=0.001"),
        ("1", "completed", "optimizer.lr=0.01"),
        ("0", "failed", "optimizer.lr=0.1"),
        ("3", "no result", "optimizer.lr=0.0001"),
    ]
    assert "4 jobs: 2 completed, 1 failed, 1 without a result." in markdown
    assert "| 2   | completed | 2.2500        | 100   | 0:01:00 | optimizer.lr=0.001" in markdown
    assert "- job 0: no finite val/loss" in markdown
    assert "- job 3: no result.json: the job is still running, or was killed" in markdown
    assert (tmp_path / "summary.md").read_text() == markdown
