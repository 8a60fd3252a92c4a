"""The CSV logger of a run folder: Lightning's, except that it continues a metrics.csv that is
already there instead of deleting it, so a run resumed in its own folder keeps one file."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter

from tinylm.runs.folder import RunFolder
from tinylm.utils.files import write_atomically


class ContinuedMetricsWriter(ExperimentWriter):
    """Appends to an existing metrics.csv (Lightning's writer deletes it).

    The rows a crashed or killed run logged after the checkpoint it resumes from are dropped at
    the first save: those with a step at or after the first step logged now. The run logs on
    the same schedule as before, so they are exactly the steps it is about to log again.
    """

    def _check_log_dir_exists(self) -> None:
        self.continued = self._fs.isfile(self.metrics_file_path)
        if self.continued:
            with self._fs.open(self.metrics_file_path, "r", newline="") as file:
                self.metrics_keys = list(csv.DictReader(file).fieldnames or [])

    def save(self) -> None:
        if self.continued and self.metrics:
            self.drop_rows_from(min(row["step"] for row in self.metrics))
            self.continued = False
        super().save()

    def drop_rows_from(self, step: int) -> None:
        path = Path(self.metrics_file_path)
        with open(path, newline="") as file:
            rows = [row for row in csv.DictReader(file) if int(row["step"]) < step]
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=self.metrics_keys)
        writer.writeheader()
        writer.writerows(rows)
        write_atomically(path, text.getvalue())


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
