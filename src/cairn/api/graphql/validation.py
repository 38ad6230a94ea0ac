"""Arguments checked as REST checks them: the same pydantic request models
(``cairn.api.schemas``) and the same code, ``app.validation``, naming the refused field."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from cairn.api.problems import ProblemError

Model = TypeVar("Model", bound=BaseModel)


def validated(model: type[Model], data: dict[str, Any], where: str = "input") -> Model:
    """``data`` as ``model``, or 422 ``app.validation`` listing every refused field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [
            {
                "location": ".".join([where, *(str(part) for part in err["loc"])]),
                "field": str(err["loc"][-1]) if err["loc"] else None,
                "message": err["msg"],
                "type": err["type"],
            }
            for err in exc.errors()
        ]
        first = errors[0]
        raise ProblemError(
            422,
            "app.validation",
            f"invalid request: {first['location']}: {first['message']}",
            errors=errors,
        ) from None


def bounded_text(name: str, value: str, longest: int) -> str:
    """An id or filter argument of 1 to ``longest`` characters (REST's path and query rules)."""
    text = str(value)
    if not 1 <= len(text) <= longest:
        raise ProblemError(
            422, "app.validation", f"{name} must be 1 to {longest} characters", field=name
        )
    return text


def non_negative(name: str, value: int | None) -> int | None:
    if value is not None and value < 0:
        raise ProblemError(422, "app.validation", f"{name} must not be negative", field=name)
    return value
