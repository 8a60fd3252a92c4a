"""Start-up stays lean: a command imports the heavy libraries of the features it uses only."""

import subprocess
import sys

import pytest


def modules_loaded_by(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


@pytest.mark.parametrize(
    "statement, absent",
    [
        # Training on local text or an existing cache needs no 🤗 datasets, pandas or pyarrow.
        ("import tinylm.commands.train; import tinylm.data.text",
         {"datasets", "pandas", "pyarrow", "tinylm.data.fineweb", "tinylm.data.tinystories"}),
        # Generating needs no Lightning (nor what it brings: torchmetrics, scipy, matplotlib).
        ("import tinylm.commands.generate",
         {"lightning", "torchmetrics", "scipy", "matplotlib", "datasets", "wandb"}),
        # What every script imports before it checks its settings (its command, Hydra's callbacks
        # in conf/hydra) loads no Lightning or torchmetrics: a refused command answers without
        # them. They are imported when the work starts (fit, evaluation).
        ("import tinylm.commands.train, tinylm.commands.eval, tinylm.commands.prepare_data, "
         "tinylm.experiments.summary, tinylm.runs.claim",
         {"lightning", "torchmetrics"}),
    ],
    ids=["train", "generate", "before-the-settings-check"],
)  # fmt: skip
def test_a_command_does_not_import_what_it_does_not_use(statement, absent):
    assert modules_loaded_by(statement) & absent == set()
