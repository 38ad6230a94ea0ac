"""One exception tree (``cairn.errors``), drawn in its docstring, every class with its own stable
code; and no HTTP status outside ``cairn.api``. A new error is a decision: it has to be drawn,
coded and given a status in ``cairn.api.problems.STATUS`` before these tests pass."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path

import cairn
from cairn import errors
from cairn.api.problems import ProblemError
from cairn.errors import CairnError

SRC = Path(cairn.__file__).parent

#: Raised for control flow inside one module (or package) and caught there; never seen by a caller.
PRIVATE_CONTROL_FLOW = {"_Unproven", "HandlerFailed", "_Stale", "_Fallback", "SubjectKeyGone"}


def _modules() -> list[str]:
    names = []
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        if parts[-1] == "__main__":
            continue  # importing it would run the CLI
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def _tree() -> list[type[CairnError]]:
    """Every class of the tree: what ``cairn.errors`` defines, and the HTTP layer's leaf."""
    defined = [
        cls
        for cls in vars(errors).values()
        if inspect.isclass(cls) and issubclass(cls, CairnError) and cls.__module__ == "cairn.errors"
    ]
    return [*defined, ProblemError]


def _drawn() -> list[tuple[str, str, str | None]]:
    """(class, drawn code, drawn parent) for every node of the docstring's tree."""
    assert errors.__doc__
    nodes: list[tuple[str, str, str | None]] = []
    parents: list[str] = []
    for line in errors.__doc__.splitlines():
        root = re.fullmatch(r"    (CairnError)\s+code", line)
        if root:
            parents = [root[1]]
            continue
        node = re.match(r"    ((?:[│ ]   )*)[├└]── (\w+)\s+(\S+)", line)
        if node:
            depth = len(node[1]) // 4 + 1
            del parents[depth:]
            nodes.append((node[2], node[3], parents[depth - 1]))
            parents.append(node[2])
    return [("CairnError", "cairn.error", None), *nodes]


def test_every_public_exception_in_cairn_is_in_the_one_tree() -> None:
    strays = []
    for name in _modules():
        module = importlib.import_module(name)
        for attr, obj in vars(module).items():
            if (
                inspect.isclass(obj)
                and issubclass(obj, BaseException)
                and obj.__module__ == name
                and not issubclass(obj, CairnError)
                and attr not in PRIVATE_CONTROL_FLOW
            ):
                strays.append(f"{name}.{attr}")
    assert strays == []
    outside = {
        f"{cls.__module__}.{cls.__name__}"
        for cls in _all_subclasses(CairnError)
        if cls.__module__.startswith("cairn.") and cls.__module__ != "cairn.errors"
    }
    assert outside == {"cairn.api.problems.ProblemError"}


def _all_subclasses(cls: type[CairnError]) -> set[type[CairnError]]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub, *_all_subclasses(sub)}
    return found


def test_every_class_has_its_own_code_and_no_two_share_one() -> None:
    codes: dict[str, str] = {}
    for cls in _tree():
        code = cls.__dict__.get("code")
        assert isinstance(code, str), f"{cls.__name__} inherits its code"
        assert re.fullmatch(r"[a-z_]+(\.[a-z_]+)+", code), code
        assert code not in codes, f"{cls.__name__} and {codes[code]} share {code!r}"
        codes[code] = cls.__name__


def test_the_docstring_draws_every_class_under_its_parent_with_its_code() -> None:
    drawn = {name: (code, parent) for name, code, parent in _drawn()}
    assert sorted(drawn) == sorted(cls.__name__ for cls in _tree())
    for cls in _tree():
        code, parent = drawn[cls.__name__]
        if parent is not None:
            assert cls.__bases__[0].__name__ == parent, cls.__name__
        if "*" not in code and "<" not in code:  # a family (store.*) or a per-rule code
            assert cls.code == code, cls.__name__
        else:
            assert cls.code.startswith(code.rstrip("*")) or code.startswith("<"), cls.__name__


def test_the_per_rule_families_take_the_code_they_are_given() -> None:
    assert errors.DomainError("order.empty", "no items").code == "order.empty"
    assert errors.ConflictError("saga.not_failed", "running").code == "saga.not_failed"
    assert errors.InvalidCommandError("bad", field="X.y").code == "command.invalid"
    assert errors.PermissionDeniedError("no").code == "auth.forbidden"
    assert errors.LeaseLostError().code == "lease.lost"


# --- no HTTP status outside cairn.api --------------------------------------------------------


def _is_error_class(node: ast.ClassDef) -> bool:
    names = [b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases]
    return any(n.endswith(("Error", "Exception")) for n in names)


def _http_status_mentions(source: str, name: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source, name)):
        where = f"{name}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.ClassDef) and _is_error_class(node):
            for inner in ast.walk(node):
                targets: list[ast.expr] = []
                if isinstance(inner, ast.Assign):
                    targets = inner.targets
                elif isinstance(inner, ast.AnnAssign):
                    targets = [inner.target]
                for target in targets:
                    attr = getattr(target, "id", None) or getattr(target, "attr", None)
                    if attr in ("status", "status_code", "http_status"):
                        found.append(f"{where}: an error class sets {attr}")
        elif isinstance(node, ast.Call):
            func = node.func
            callee = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if not callee.endswith("Error"):
                continue
            for keyword in node.keywords:
                # ``status=state.status`` is an aggregate's lifecycle status (a detail), not HTTP.
                value = keyword.value
                is_int = isinstance(value, ast.Constant) and isinstance(value.value, int)
                if keyword.arg in ("status_code", "http_status") or (
                    keyword.arg == "status" and is_int
                ):
                    found.append(f"{where}: {callee}({keyword.arg}=...)")
        elif isinstance(node, ast.ImportFrom) and node.module in ("http", "starlette.status"):
            found.append(f"{where}: imports from {node.module}")
        elif (
            isinstance(node, ast.ImportFrom)
            and node.module == "fastapi"
            and any(alias.name == "status" for alias in node.names)
        ):
            found.append(f"{where}: imports fastapi.status")
    return found


def test_no_module_outside_cairn_api_speaks_http_status() -> None:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        if not path.is_relative_to(SRC / "api"):
            name = str(path.relative_to(SRC.parent))
            found += _http_status_mentions(path.read_text(encoding="utf-8"), name)
    assert found == []


def test_the_http_status_check_catches_what_it_is_meant_to() -> None:
    source = (
        "from http import HTTPStatus\n"
        "class GoneError(CairnError):\n"
        "    status: ClassVar[int] = 410\n"
        "    def __init__(self) -> None:\n"
        "        self.status = 410\n"
        "def refuse(state):\n"
        "    raise ApplicationError('x.y', 'no', status=409)\n"
        "def fine(state):\n"
        "    raise DomainError('order.not_draft', 'no', status=state.status)\n"
    )
    found = _http_status_mentions(source, "sample.py")
    assert [f.split(": ", 1)[1] for f in found] == [
        "imports from http",
        "an error class sets status",
        "an error class sets status",
        "ApplicationError(status=...)",
    ]
