"""Training's validation and scripts/eval.py are one function (tinylm.evaluation), and
next_token_loss is the only place tinylm calls cross-entropy."""

import ast
from pathlib import Path

import lightning as L
import pytest
import torch

from tests.conftest import compose_config
from tinylm.checkpoint import load_checkpoint
from tinylm.commands.eval import evaluate, evaluation_data
from tinylm.evaluation import Evaluation
from tinylm.training import GPTLightningModule

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "tinylm"
# Numbers no model gives: whatever reports them got them from Evaluation.compute.
MARKED = {"loss": 1.25, "perplexity": 3.5, "accuracy": 0.125, "bpb": 0.75}


def test_cross_entropy_is_called_in_one_place():
    callers = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute | ast.Name):
                name = node.attr if isinstance(node, ast.Attribute) else node.id
                if "cross_entropy" in name:
                    callers.append(str(path.relative_to(PACKAGE)))
    assert callers == ["evaluation.py"]


def test_validation_and_the_eval_script_report_what_evaluation_computes(
    trained_run, tmp_path, monkeypatch
):
    monkeypatch.setattr(
        Evaluation, "compute", lambda self: {k: torch.tensor(v) for k, v in MARKED.items()}
    )
    run = trained_run / "run"
    cfg = compose_config("eval", f"ckpt_path={run}", "limit_batches=2", "output_file=null",
                         f"paths.cache_dir={tmp_path / 'cache'}", "data=text",
                         f"data.path={trained_run / 'stories.txt'}")  # fmt: skip
    numbers = evaluate(cfg)
    assert {key: numbers[key] for key in MARKED} == MARKED

    loaded = load_checkpoint(run)
    datamodule = evaluation_data(cfg, loaded)
    datamodule.setup("validate")
    module = GPTLightningModule.load_from_checkpoint(loaded.path, map_location="cpu")
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False,
                        enable_model_summary=False, limit_val_batches=2)  # fmt: skip
    (logged,) = trainer.validate(module, dataloaders=datamodule.val_dataloader(), verbose=False)
    names = {"loss": "val/loss", "perplexity": "val/ppl", "accuracy": "val/acc", "bpb": "val/bpb"}
    assert {key: logged[name] for key, name in names.items()} == pytest.approx(MARKED)
