"""Runtime shape checks of commands: every field has the type its annotation names.

Commands are built by the API, the CLI and sagas from untrusted input; this catches a wrong type
(``quantity="2"``, ``True`` for an int, a float for money) before any domain code runs, as
``command.invalid`` naming the field. The business rules themselves stay in the domain.

The check is pydantic's strict validation of the command's dataclass, built once per command
type. Commands stay plain dataclasses (the domain imports no pydantic), so the configuration
comes from outside: pydantic takes no ``config`` for a dataclass itself, hence the one-tuple
around it, whose configuration the dataclasses inside inherit. ``revalidate_instances`` makes
it check the fields of an instance (and of the dataclasses within) instead of passing it through.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pydantic import ConfigDict, TypeAdapter, ValidationError

from cairn.errors import InvalidCommandError

_STRICT = ConfigDict(strict=True, revalidate_instances="always", arbitrary_types_allowed=True)

_adapters: dict[type, TypeAdapter[tuple[Any]]] = {}


def check_command(command: object) -> None:
    """Raise :class:`InvalidCommandError` (``command.invalid``) if a field of ``command`` has
    the wrong type."""
    if not dataclasses.is_dataclass(command) or isinstance(command, type):
        raise InvalidCommandError(f"{command!r} is not a command")
    cls = type(command)
    adapter = _adapters.get(cls)
    if adapter is None:
        one_tuple: Any = tuple[cls]  # type: ignore[valid-type]
        adapter = _adapters[cls] = TypeAdapter(one_tuple, config=_STRICT)
    try:
        adapter.validate_python((command,))
    except ValidationError as invalid:
        error = invalid.errors(include_url=False)[0]
        field = ".".join([cls.__name__, *(str(part) for part in error["loc"][1:])])
        expected = error["msg"].replace("Input should be", "must be", 1)
        raise InvalidCommandError(
            f"{field} {expected}, got {type(error['input']).__name__}", field=field
        ) from None
