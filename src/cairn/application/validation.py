"""Runtime shape checks of commands: every field has the type its annotation names.

Commands are built by the API, the CLI and sagas from untrusted input; this catches a wrong type
(``quantity="2"``, ``True`` for an int, a float for money) before any domain code runs, as
``command.invalid`` naming the field. The business rules themselves stay in the domain.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from cairn.errors import InvalidCommandError

Check = Callable[[Any], bool]

_checks: dict[Any, Check] = {}


def check_command(command: object) -> None:
    """Raise :class:`InvalidCommandError` (``command.invalid``) if a field of ``command`` has
    the wrong type."""
    if not dataclasses.is_dataclass(command) or isinstance(command, type):
        raise InvalidCommandError(f"{command!r} is not a command")
    _check_dataclass(command, type(command).__name__)


_fields: dict[type, list[tuple[str, Any]]] = {}


def _fields_of(cls: type) -> list[tuple[str, Any]]:
    fields = _fields.get(cls)
    if fields is None:
        hints = typing.get_type_hints(cls)
        fields = _fields[cls] = [(f.name, hints[f.name]) for f in dataclasses.fields(cls)]
    return fields


def _check_dataclass(obj: Any, path: str) -> None:
    for name, tp in _fields_of(type(obj)):
        value = getattr(obj, name)
        if not _check_for(tp)(value):
            raise InvalidCommandError(
                f"{path}.{name} must be {_describe(tp)}, got {type(value).__name__}",
                field=f"{path}.{name}",
            )
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            _check_dataclass(value, f"{path}.{name}")


def _check_for(tp: Any) -> Check:
    cached = _checks.get(tp)
    if cached is None:
        cached = _checks[tp] = _build(tp)
    return cached


def _build(tp: Any) -> Check:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return lambda v: True
    if tp is int:
        return lambda v: isinstance(v, int) and not isinstance(v, bool)
    if tp in (str, bool, Decimal):
        return lambda v: isinstance(v, tp)
    if tp is type(None):
        return lambda v: v is None
    if origin in (typing.Union, types.UnionType):
        options = [_check_for(a) for a in args]
        return lambda v: any(check(v) for check in options)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        item = _check_for(args[0])
        return lambda v: isinstance(v, tuple) and all(item(x) for x in v)
    if origin in (Mapping, dict):
        key, value = _check_for(args[0]), _check_for(args[1])
        return lambda v: isinstance(v, Mapping) and all(key(k) and value(x) for k, x in v.items())
    if origin is frozenset:
        item = _check_for(args[0])
        return lambda v: isinstance(v, frozenset) and all(item(x) for x in v)
    if isinstance(tp, type):
        return lambda v: isinstance(v, tp)
    return lambda v: True  # pragma: no cover - an annotation this checker does not know


def _describe(tp: Any) -> str:
    if isinstance(tp, type):
        return {int: "an integer", str: "a string", bool: "a boolean"}.get(tp, tp.__name__)
    # "typing.Optional[cairn.orders.domain.money.Money]" -> "Optional[Money]"
    return re.sub(r"\b(?:\w+\.)+(\w+)", r"\1", str(tp))
