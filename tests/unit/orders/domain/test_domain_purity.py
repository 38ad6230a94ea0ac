"""The domain is pure: it imports only the standard library, ``cairn.errors``, the pure decider
protocol (``cairn.decider``) and itself, and
never reads the clock or makes up random ids (time and ids come in on the command)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import cairn.orders.domain

DOMAIN = Path(cairn.orders.domain.__file__).parent
MODULES = sorted(DOMAIN.glob("*.py"))
FORBIDDEN_CALLS = {"uuid4", "uuid1", "now", "utcnow", "today", "time", "monotonic", "random"}


def imported_modules(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_a_domain_module_imports_only_the_stdlib_errors_deciders_and_the_domain(path: Path) -> None:
    for name in imported_modules(ast.parse(path.read_text())):
        top = name.split(".")[0]
        allowed = (
            top in sys.stdlib_module_names
            or top == "__future__"
            or name in ("cairn.errors", "cairn.decider")
            or name == "cairn.orders.domain"
            or name.startswith("cairn.orders.domain.")
        )
        assert allowed, f"{path.name} imports {name}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_a_domain_module_reads_no_clock_and_makes_up_no_random_id(path: Path) -> None:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            assert name not in FORBIDDEN_CALLS, f"{path.name}:{node.lineno} calls {name}()"
