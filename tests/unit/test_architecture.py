"""The shape SPEC §11 asks for, checked on the source: the toolkit never imports the order
application, no import cycles between modules, no module over 600 lines.

The domain's purity (stdlib and ``cairn.errors`` only) has its own test,
``tests/unit/orders/domain/test_domain_purity.py``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "cairn"
APPLICATION = "cairn.orders"
#: The packages that may import the application: itself and its entry points.
MAY_IMPORT_APPLICATION = ("cairn.orders", "cairn.api", "cairn.cli")
MAX_LINES = 600


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES: dict[str, Path] = {
    _module_name(path): path for path in sorted(PACKAGE.rglob("*.py")) if path.is_file()
}


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported(module: str, node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    """The modules ``node`` (in ``module``) imports: for ``from m import n``, the submodule
    ``m.n`` if there is one, else ``m``. (Importing ``m.n`` runs ``m/__init__.py`` first;
    like other import graphs, this one does not count that as ``m.n`` importing ``m``.)"""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    base = node.module or ""
    if node.level:
        package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{base}" if base else package
    for alias in node.names:
        yield f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base


def _all_imports(module: str) -> Iterator[str]:
    """Every import of ``module``: top level, in functions, under ``TYPE_CHECKING``."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield from _imported(module, node)


def _top_level_imports(module: str) -> Iterator[str]:
    """The imports that run when ``module`` is imported: not those in functions, nor those
    under ``if TYPE_CHECKING:``."""

    def walk(statements: list[ast.stmt]) -> Iterator[str]:
        for node in statements:
            if isinstance(node, ast.Import | ast.ImportFrom):
                yield from _imported(module, node)
            elif isinstance(node, ast.If):
                if not _is_type_checking(node.test):
                    yield from walk(node.body)
                yield from walk(node.orelse)
            elif isinstance(node, ast.Try):
                for block in (node.body, node.orelse, node.finalbody):
                    yield from walk(block)
                for handler in node.handlers:
                    yield from walk(handler.body)
            elif isinstance(node, ast.With | ast.ClassDef):
                yield from walk(node.body)

    yield from walk(ast.parse(MODULES[module].read_text(encoding="utf-8")).body)


def _resolve(name: str) -> str | None:
    """The module of ``cairn`` that an imported name refers to (its longest known prefix)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


# -- (a) the toolkit never knows the application ----------------------------------------------


def _toolkit_parts() -> list[str]:
    """The toolkit's top-level packages and modules (``cairn.projections``, ``cairn.workers``…)."""
    parts = {".".join(m.split(".")[:2]) for m in MODULES if m != "cairn"}
    return sorted(p for p in parts if not any(_within(p, a) for a in MAY_IMPORT_APPLICATION))


@pytest.mark.parametrize("part", _toolkit_parts())
def test_the_toolkit_never_imports_the_application(part: str) -> None:
    offending = sorted(
        f"{module} imports {name}"
        for module in MODULES
        if _within(module, part)
        for name in set(_all_imports(module))
        if _within(name, APPLICATION)
    )
    assert offending == []


def test_the_check_sees_every_kind_of_import() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from cairn.orders import bootstrap\n"
        "def f():\n    import cairn.orders.views\n"
    )
    names = {
        name
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Import | ast.ImportFrom)
        for name in _imported("cairn.workers", node)
    }
    assert {"cairn.orders.bootstrap", "cairn.orders.views"} <= names


# -- (b) no import cycles ---------------------------------------------------------------------


def _import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module in MODULES:
        targets = {_resolve(name) for name in _top_level_imports(module)}
        graph[module] = {t for t in targets if t is not None and t != module}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles_between_modules() -> None:
    assert _cycles(_import_graph()) == []


def test_the_cycle_finder_reports_each_cycle_once() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert _cycles(graph) == [["a", "b", "c"]]


# -- (c) no module over 600 lines -------------------------------------------------------------


def _lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def test_no_module_is_over_600_lines() -> None:
    too_long = {
        str(path.relative_to(SRC)): _lines(path)
        for path in MODULES.values()
        if _lines(path) > MAX_LINES
    }
    assert too_long == {}
