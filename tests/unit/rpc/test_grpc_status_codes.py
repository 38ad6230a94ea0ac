"""Every kind of refusal has its gRPC status code (SPEC §15), from one table
(``cairn.rpc.errors``) that follows the HTTP statuses of ``cairn.api.problems``."""

from __future__ import annotations

import grpc
import pytest
from pydantic import BaseModel, ValidationError

from cairn import errors as e
from cairn.api.problems import ProblemError
from cairn.rpc.errors import describe, status_code_of


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (e.ConcurrencyError("order-1", 1, 2), grpc.StatusCode.ABORTED),
        (e.NotFoundError("order.not_found", "no order"), grpc.StatusCode.NOT_FOUND),
        (e.DomainError("product.not_found", "no such SKU"), grpc.StatusCode.NOT_FOUND),
        (e.DomainError("order.empty", "no items"), grpc.StatusCode.FAILED_PRECONDITION),
        (e.InvalidCommandError("bad"), grpc.StatusCode.INVALID_ARGUMENT),
        (e.PermissionDeniedError("no"), grpc.StatusCode.PERMISSION_DENIED),
        (e.StoreUnavailableError("database down"), grpc.StatusCode.UNAVAILABLE),
        (e.StoreError("broken"), grpc.StatusCode.INTERNAL),
        (ProblemError(401, "auth.missing_token", "token"), grpc.StatusCode.UNAUTHENTICATED),
        (ProblemError(403, "auth.forbidden", "role"), grpc.StatusCode.PERMISSION_DENIED),
        (ProblemError(404, "order.not_found", "order"), grpc.StatusCode.NOT_FOUND),
        (ProblemError(422, "app.validation", "field"), grpc.StatusCode.INVALID_ARGUMENT),
        (ProblemError(503, "app.read_model_behind", "wait"), grpc.StatusCode.UNAVAILABLE),
    ],
    ids=lambda value: getattr(value, "code", None) if isinstance(value, e.CairnError) else None,
)
def test_each_error_has_its_status_code(error: e.CairnError, code: grpc.StatusCode) -> None:
    assert status_code_of(error) is code


class _Item(BaseModel):
    quantity: int


def test_a_validation_error_is_invalid_argument_naming_the_field() -> None:
    with pytest.raises(ValidationError) as info:
        _Item.model_validate({"quantity": "many"})
    code, cairn_code, message = describe(info.value)
    assert (code, cairn_code) == (grpc.StatusCode.INVALID_ARGUMENT, "app.validation")
    assert message.startswith("invalid request: quantity: ")


def test_an_unexpected_error_is_internal_and_says_nothing_of_itself() -> None:
    code, cairn_code, message = describe(RuntimeError("secret detail"))
    assert (code, cairn_code) == (grpc.StatusCode.INTERNAL, "app.internal")
    assert "secret" not in message
