"""Packages whose names are imported when first used, not when the package is.

`tinylm.data` offers three data sources, and importing one pulls in its own heavy libraries (🤗
datasets for TinyStories, pyarrow and fsspec for FineWeb); `tinylm.training` pulls in Lightning.
A run of `data=text`, or a script that needs only the optimizer, should pay for none of them, so
these packages name each export's module and import it on first access (PEP 562).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, exports: dict[str, str]) -> Callable[[str], Any]:
    """A module-level `__getattr__` for `package` that imports `exports[name]` (a module path)
    the first time `name` is asked for, and returns its attribute `name`."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(exports[name]), name)

    return __getattr__
