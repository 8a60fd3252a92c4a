"""docs/learning-path.md stays true: every `file::Symbol` it names exists, every path it names is
in the repository (its commands: tests/test_documented_commands.py). The tutorial notebook's
`file::Symbol` references are checked too."""

import ast
import re

import nbformat
import pytest

from tests.conftest import REPO_ROOT

LEARNING_PATH = REPO_ROOT / "docs" / "learning-path.md"
TEXT = LEARNING_PATH.read_text(encoding="utf-8")
NOTEBOOK = nbformat.read(REPO_ROOT / "notebooks" / "train_a_tiny_gpt.ipynb", as_version=4)
NOTEBOOK_TEXT = "\n".join(cell.source for cell in NOTEBOOK.cells if cell.cell_type == "markdown")
SYMBOL_REFERENCE = re.compile(r"`([\w./-]+\.py)::([\w.]+)`")
PATH_REFERENCE = re.compile(r"`((?:src|conf|tests|scripts|docs|notebooks|benchmarks)/[\w./-]+)`")
BASH_BLOCK = re.compile(r"```bash\n(.*?)```", re.DOTALL)

SYMBOLS = sorted(set(SYMBOL_REFERENCE.findall(TEXT + NOTEBOOK_TEXT)))
PATHS = sorted(set(PATH_REFERENCE.findall(TEXT + NOTEBOOK_TEXT)))
COMMANDS = [
    line.split("  #")[0].strip()
    for block in BASH_BLOCK.findall(TEXT)
    for line in block.splitlines()
    if line.startswith("python scripts/")
]


def defines(tree: ast.AST, dotted_name: str) -> bool:
    """Whether the module `tree` defines `dotted_name`: a function, class or assignment at the
    top level, then, for A.b, a method or attribute of class A."""
    scope = tree
    for name in dotted_name.split("."):
        found = None
        for node in getattr(scope, "body", []):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                if node.name == name:
                    found = node
            elif isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                    found = node
        if found is None:
            return False
        scope = found
    return True


def test_the_path_names_enough_code_and_commands_to_be_checked():
    assert len(SYMBOLS) >= 30 and len(COMMANDS) >= 15 and len(PATHS) >= 3


@pytest.mark.parametrize("path, symbol", SYMBOLS, ids=[f"{p}::{s}" for p, s in SYMBOLS])
def test_every_named_symbol_exists(path, symbol):
    file = REPO_ROOT / path
    assert file.is_file(), f"{path} does not exist"
    assert defines(ast.parse(file.read_text(encoding="utf-8")), symbol), f"{path}::{symbol}"


@pytest.mark.parametrize("path", PATHS)
def test_every_named_path_exists(path):
    assert (REPO_ROOT / path).exists()


def test_ast_lookup_finds_methods_and_refuses_what_is_not_there():
    tree = ast.parse("class A:\n    def b(self): ...\nX = 1\ndef f(): ...\n")
    assert defines(tree, "A.b") and defines(tree, "X") and defines(tree, "f")
    assert not defines(tree, "A.c") and not defines(tree, "B") and not defines(tree, "f.g")
