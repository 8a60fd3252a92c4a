"""`python scripts/compare.py` (conf/compare.yaml): the validation-loss curves of runs on one PNG,
and a table of their results, best first."""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig, ListConfig

from tinylm.errors import ConfigError
from tinylm.experiments.compare import compare as compare_runs
from tinylm.utils.files import write_atomically

log = logging.getLogger(__name__)


def compare(cfg: DictConfig) -> str:
    """Draw the runs' curves into cfg.output, print the table and write it beside the PNG as
    Markdown; return the table."""
    runs = cfg.runs
    if not runs:
        raise ConfigError(
            "runs is not set; give run or sweep folders, e.g. runs=outputs/train/multiruns/<sweep> "
            "or 'runs=[outputs/train/runs/<a>,outputs/train/runs/<b>]'."
        )
    folders = [str(run) for run in runs] if isinstance(runs, ListConfig) else [str(runs)]
    output = Path(cfg.output)
    table = compare_runs(folders, output, target=cfg.get("target"), baseline=cfg.get("baseline"))
    write_atomically(output.with_suffix(".md"), table + "\n", folder_key="output")
    print(table)
    log.info(f"Loss curves: {output}")
    return table
