"""Every refusal is an RFC 9457 problem document with a stable code."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator

import httpx
import pytest
from api_tokens import ADMIN
from fastapi import FastAPI

from cairn import errors
from cairn.api.problems import STATUS, ProblemError, install_problem_handlers, status_of
from cairn.errors import CairnError

PROBLEM = "application/problem+json"


async def test_unknown_route_is_a_404_problem(bare_client: httpx.AsyncClient) -> None:
    r = await bare_client.get("/api/v1/nothing-here", headers=ADMIN)
    assert r.status_code == 404
    assert r.headers["content-type"] == PROBLEM
    body = r.json()
    assert body["code"] == "app.not_found"
    assert body["status"] == 404
    assert {"type", "title", "detail"} <= body.keys()


async def test_wrong_method_is_a_405_problem(bare_client: httpx.AsyncClient) -> None:
    r = await bare_client.delete("/healthz")
    assert r.status_code == 405
    assert r.headers["content-type"] == PROBLEM
    assert r.json()["code"] == "app.method_not_allowed"


async def test_declared_oversized_body_is_a_413_problem(bare_client: httpx.AsyncClient) -> None:
    r = await bare_client.post("/api/v1/orders", content=b"x" * 4096, headers=ADMIN)
    assert r.status_code == 413
    assert r.headers["content-type"] == PROBLEM
    assert r.json()["code"] == "app.body_too_large"


async def test_streamed_oversized_body_is_a_413_problem(bare_client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(8):
            yield b"y" * 1024

    r = await bare_client.post("/api/v1/orders", content=chunks(), headers=ADMIN)
    assert r.status_code == 413
    assert r.json()["code"] == "app.body_too_large"


async def test_problem_carries_the_request_correlation_id(bare_client: httpx.AsyncClient) -> None:
    r = await bare_client.get("/nope", headers={"X-Correlation-ID": "abc-123"})
    assert r.headers["x-correlation-id"] == "abc-123"
    assert r.json()["correlation_id"] == "abc-123"


# --- the one table from error class to HTTP status ------------------------------------------


def _tree() -> set[type[CairnError]]:
    return {
        cls
        for cls in vars(errors).values()
        if inspect.isclass(cls) and issubclass(cls, CairnError) and cls.__module__ == "cairn.errors"
    }


def test_every_error_class_is_given_a_4xx_or_5xx_status_explicitly() -> None:
    assert set(STATUS) == _tree()  # no class left to inherit by accident, none stale
    assert all(400 <= status < 600 for status in STATUS.values())


def test_only_the_errors_meant_as_server_faults_answer_500() -> None:
    assert {cls.__name__ for cls, status in STATUS.items() if status == 500} == {
        "StoreError",
        "UnsupportedStoreURL",
        "MigrationChecksumError",
        "PersonalDataError",
        "CodecError",
        "UnknownEventTypeError",
        "UpcastError",
        "UnsupportedBrokerURL",
    }


class _LocalConflict(errors.ConflictError):
    """A subclass defined outside cairn.errors takes its nearest listed ancestor's status."""


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (errors.ApplicationError("command.unknown", "no handler"), 400),
        (errors.ApplicationError("saga.invalid_limit", "limit"), 400),
        (errors.InvalidCommandError("X.y must be int", field="X.y"), 422),
        (errors.PermissionDeniedError("eve may not RegisterProduct"), 403),
        (errors.ConflictError("command.id_reused", "used"), 409),
        (errors.ConflictError("saga.not_failed", "running"), 409),
        (errors.ConflictError("projection.rebuild_running", "busy"), 409),
        (errors.DomainError("order.empty", "no items"), 422),
        (errors.NotFoundError("order.not_found", "no order"), 404),
        (errors.ConcurrencyError("order-1", 2, 3), 409),
        (errors.StoreUnavailableError("down"), 503),
        (errors.PermanentAdapterError("ZZ"), 422),
        (errors.LeaseLostError(), 503),
        (ProblemError(401, "auth.missing_token", "a bearer token is required"), 401),
        (_LocalConflict("x.y", "z"), 409),
    ],
)
def test_the_status_of_an_error_is_its_class_s(error: CairnError, status: int) -> None:
    assert status_of(error) == status


async def test_an_error_raised_by_a_route_is_a_problem_with_its_status_code_and_details() -> None:
    app = FastAPI()
    install_problem_handlers(app)

    @app.post("/conflict")
    async def conflict() -> None:
        raise errors.ConflictError("saga.not_failed", "saga s-1 is running", saga_id="s-1")

    @app.post("/stale")
    async def stale() -> None:
        raise errors.ConcurrencyError("order-1", 2, 3)

    @app.get("/down")
    async def down() -> None:
        raise errors.StoreUnavailableError("database down")

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        r = await client.post("/conflict")
        assert (r.status_code, r.headers["content-type"]) == (409, PROBLEM)
        body = r.json()
        assert (body["status"], body["code"], body["detail"]) == (
            409,
            "saga.not_failed",
            "saga s-1 is running",
        )
        assert body["saga_id"] == "s-1"
        assert (await client.post("/stale")).status_code == 409
        assert (await client.post("/stale", headers={"If-Match": '"2"'})).status_code == 412
        r = await client.get("/down")
        assert (r.status_code, r.headers["retry-after"]) == (503, "1")
