"""The CSV logger of a run folder: Lightning's, except that it continues a metrics.csv that is
already there instead of deleting it, so a run resumed in its own folder keeps one file."""

from __future__ import annotations

import csv

from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter

from tinylm.runs.folder import RunFolder


class ContinuedMetricsWriter(ExperimentWriter):
    """Appends to an existing metrics.csv (Lightning's writer deletes it), under its header.
    What a killed run logged after its checkpoint is cut when the checkpoint is restored
    (tinylm.runs.continuation)."""

    def _check_log_dir_exists(self) -> None:
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as file:
                self.metrics_keys = list(csv.DictReader(file).fieldnames or [])


class RunCSVLogger(CSVLogger):
    """conf/logger/csv.yaml: the run folder's csv/metrics.csv, continued when a run resumes."""

    def __init__(self, run_folder: str, **kwargs) -> None:
        csv_folder = RunFolder(run_folder).csv  # Lightning's CSVLogger writes save_dir/name/
        super().__init__(save_dir=csv_folder.parent, name=csv_folder.name, version="", **kwargs)

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = ContinuedMetricsWriter(log_dir=self.log_dir)
        return self._experiment
