"""Imports flow one way: scripts → commands → training / generation / evaluation / experiments →
data / model / tokenizers. A library package never imports the commands or the experiments."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "tinylm"
# What each part of tinylm may not import.
FORBIDDEN = {
    "commands": (),
    "experiments": ("tinylm.commands",),
}
LIBRARY_FORBIDS = ("tinylm.commands", "tinylm.experiments")


def imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
    return modules


SOURCES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=[str(p.relative_to(PACKAGE)) for p in SOURCES])
def test_imports_run_one_way(path):
    part = path.relative_to(PACKAGE).parts[0]
    forbidden = FORBIDDEN.get(part, LIBRARY_FORBIDS)
    wrong = sorted(
        module
        for module in imported_modules(path)
        if any(module == f or module.startswith(f + ".") for f in forbidden)
    )
    assert not wrong, f"{path.relative_to(PACKAGE)} imports {wrong}, against the layers"


def test_importing_tinylm_loads_nothing_heavy():
    code = "import sys, tinylm; print(sorted({'torch', 'lightning', 'hydra'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stderr
