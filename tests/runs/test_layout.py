"""tinylm.runs.folder is the one place that spells the names of a run folder's files."""

import ast
from pathlib import Path

import pytest
import yaml

from tinylm.runs.folder import RunFolder

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "src" / "tinylm"
OWNER = PACKAGE / "runs" / "folder.py"
RUN = RunFolder("")
FILES = (
    RUN.config.name, RUN.overrides.name, RUN.hydra_config.name, RUN.last_checkpoint.name,
    RUN.best_checkpoint_name.split("{")[0], RUN.metrics.name, RUN.hparams.name, RUN.samples.name,
    RUN.loss_curve.name, RUN.result.name, RUN.log.name,
)  # fmt: skip
FOLDERS = (RUN.hydra.name, RUN.checkpoints.name, RUN.csv.name)


def names_in(text: str) -> set[str]:
    """The run-folder names that `text` spells: a file's name anywhere, a folder's as a path."""
    files = {name for name in FILES if name in text}
    folders = {name for name in FOLDERS if text == name or f"{name}/" in text}
    return files | folders


def docstrings(tree: ast.AST) -> set[int]:
    """The ids of the string constants that are docstrings (prose, not code)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def spelled_names(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    prose = docstrings(tree)
    return sorted({
        name
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in prose
        for name in names_in(node.value)
    })  # fmt: skip


SOURCES = sorted(path for path in PACKAGE.rglob("*.py") if path != OWNER)


def test_the_names_are_what_a_run_folder_holds():
    assert RUN.last_checkpoint == Path("checkpoints/last.ckpt")
    assert RUN.metrics == Path("csv/metrics.csv")
    assert RUN.config == Path(".hydra/config.yaml")
    assert [RUN.result.name, RUN.samples.name, RUN.loss_curve.name, RUN.log.name] == [
        "result.json", "samples.jsonl", "loss_curve.png", "train.log"
    ]  # fmt: skip


@pytest.mark.parametrize("path", SOURCES, ids=[str(p.relative_to(PACKAGE)) for p in SOURCES])
def test_no_other_module_spells_a_run_folder_file(path):
    assert spelled_names(path) == [], f"{path.relative_to(PACKAGE)}: use tinylm.runs.folder"


def yaml_strings(value) -> list[str]:
    """The string values of a conf file; not its defaults list, whose entries name options
    (logger: csv), not files."""
    if isinstance(value, dict):
        return [
            text for key, item in value.items() if key != "defaults" for text in yaml_strings(item)
        ]
    if isinstance(value, list):
        return [text for item in value for text in yaml_strings(item)]
    return [value] if isinstance(value, str) else []


CONFS = sorted((REPO / "conf").rglob("*.yaml"))


@pytest.mark.parametrize("path", CONFS, ids=[str(p.relative_to(REPO)) for p in CONFS])
def test_no_conf_file_spells_a_run_folder_file(path):
    values = yaml_strings(yaml.safe_load(path.read_text()))
    spelled = sorted({name for text in values for name in names_in(text)})
    assert spelled == [], f"{path.relative_to(REPO)}: use ${{run_path:FOLDER,NAME}}"
