"""The projections toolkit knows no application: nothing under cairn/projections imports
cairn.orders (what is specific to orders is passed in: read models, after-commit hooks)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import cairn.projections

PACKAGE = Path(cairn.projections.__file__).parent


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: p.name)
def test_a_projections_module_imports_nothing_of_the_order_application(path: Path) -> None:
    application = {
        n for n in _imports(path) if n == "cairn.orders" or n.startswith("cairn.orders.")
    }
    assert not application, f"{path.name} imports {sorted(application)}"
