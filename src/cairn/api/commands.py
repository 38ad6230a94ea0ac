"""Running one command for an HTTP request: If-Match, Idempotency-Key, metrics, ETag.

- ``If-Match: "<version>"`` becomes the command's expected version: a mismatch is 412.
- ``Idempotency-Key``: a retry with the same key and body replays the stored first response
  (``Idempotent-Replayed: true``) and writes nothing; the same key with a different body is 422
  ``app.idempotency_key_reused``. The command id (and a new order's id) derive from the
  principal and the key, so even two processes racing on one key write the command's events once
  (the command bus ignores a re-delivered command id). The derivation is keyed with the
  idempotency store's secret: another principal using the same key gets other ids, and nobody
  can compute (and pre-create) the order id someone else's key will create.
- A retry after an ambiguous failure (a 503 because the database went away after the commit, a
  dropped connection, a request timeout) gets the first attempt's outcome: the claim of the key
  was committed before the command ran, so the retry derives the same command id, and the
  command bus finds that command's events in the log (their ids derive from it) and answers as
  the first attempt would have, instead of deciding again (SPEC §12; never 422
  ``order.not_draft`` for a place that committed).
- Command latency is observed by the command side's metrics middleware (hooked to this
  process's registry in ``runtime.py``), so commands sent by sagas are counted too.
- The response carries ``ETag: "<version>"`` and the log ``position`` for read-your-writes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request
from starlette.responses import Response

from cairn.api.auth import Principal
from cairn.api.idempotency import MAX_KEY_LENGTH, StoredResponse
from cairn.api.problems import ProblemError
from cairn.api.runtime import Runtime
from cairn.json_text import compact
from cairn.observability.logging import current_correlation_id
from cairn.observability.tracing import trace_metadata

_REPLAYED_HEADERS = ("etag", "location", "content-type")


def parse_if_match(request: Request) -> int | None:
    raw = request.headers.get("if-match")
    if raw is None:
        return None
    value = raw.strip()
    if value == "*":
        return None
    if value.startswith("W/"):
        value = value[2:]
    value = value.strip('"')
    if not value.isdigit() or len(value) > 18:
        raise ProblemError(
            400,
            "app.bad_if_match",
            'If-Match must be a stream version in quotes, e.g. If-Match: "3"',
        )
    return int(value)


def idempotency_key(request: Request) -> str | None:
    return checked_idempotency_key(request.headers.get("idempotency-key"))


def checked_idempotency_key(key: str | None) -> str | None:
    """An idempotency key as sent (header or gRPC metadata), stripped; 400 unless it is
    1-255 printable characters."""
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise ProblemError(
            400,
            "app.bad_idempotency_key",
            f"Idempotency-Key must be 1-{MAX_KEY_LENGTH} printable characters",
        )
    return key


def derived_uuid(secret: bytes, principal: Principal, key: str, purpose: str) -> str:
    """A UUID (version 4 layout) from HMAC-SHA256(secret, principal, key, purpose)."""
    message = f"{principal.name}\x1f{key}\x1f{purpose}".encode("utf-8", "surrogatepass")
    digest = hmac.new(secret, message, hashlib.sha256).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


async def _request_hash(request: Request) -> str:
    body = await request.body()
    try:
        canonical = json.dumps(json.loads(body or b"null"), sort_keys=True, separators=(",", ":"))
    except ValueError:
        canonical = body.decode("latin-1")
    text = f"{request.method}\x1f{request.url.path}\x1f{canonical}"
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _json_response(body: dict[str, Any], status: int, version: int | None) -> Response:
    headers = {"ETag": f'"{version}"'} if version is not None else {}
    return Response(
        compact(body),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


async def execute(
    request: Request,
    runtime: Runtime,
    principal: Principal,
    build: Callable[[str | None], Any],
    respond: Callable[[Any, Any], dict[str, Any]],
    *,
    status: int,
    new_stream: bool = False,
) -> Response:
    """Dispatch ``build(new_id)`` (``new_id`` derives from the Idempotency-Key when there is
    one) and answer ``respond(command, result)`` with ``status``. ``new_stream``: the command
    creates a stream whose id ``build`` mints (from ``new_id`` or a fresh UUID), so there is
    nothing to read before deciding; a retry with the same key is answered by the command-id
    replay before anything is decided."""
    expected = parse_if_match(request)
    key = idempotency_key(request)
    if key is None:
        return await _dispatch_and_respond(
            runtime, principal, build(None), respond, status, expected, None, new_stream
        )
    first: list[Response] = []

    async def attempt(command_id: str, entity_id: str) -> StoredResponse:
        response = await _dispatch_and_respond(
            runtime,
            principal,
            build(entity_id),
            respond,
            status,
            expected,
            command_id,
            new_stream,
        )
        first.append(response)
        headers = {k: v for k, v in response.headers.items() if k.lower() in _REPLAYED_HEADERS}
        return StoredResponse(request_hash, response.status_code, bytes(response.body), headers)

    request_hash = await _request_hash(request)
    stored, replayed = await once(runtime, principal, key, request_hash, attempt)
    if not replayed:
        return first[0]
    headers = dict(stored.headers)
    headers["Idempotent-Replayed"] = "true"
    return Response(stored.body, status_code=stored.status, headers=headers)


async def once(
    runtime: Runtime,
    principal: Principal,
    key: str,
    request_hash: str,
    attempt: Callable[[str, str], Awaitable[StoredResponse]],
) -> tuple[StoredResponse, bool]:
    """The response of ``key``'s first use by ``principal`` and whether it is a replay: the
    stored one (``True``; nothing runs), or what ``attempt(command_id, entity_id)`` answers now,
    stored for the retries (``False``). Any transport's idempotency keys (REST's header, gRPC's
    metadata) go through here; the same key with another ``request_hash`` is 422
    ``app.idempotency_key_reused``."""
    async with runtime.idempotency.locked(principal.name, key):
        claim = await runtime.idempotency.claim(principal.name, key)
        stored = claim.stored
        if stored is not None:
            if stored.request_hash != request_hash:
                raise ProblemError(
                    422,
                    "app.idempotency_key_reused",
                    "this Idempotency-Key was used with a different request",
                )
            return stored, True
        # Salted with the claim's generation: a key used again after its record expired is a
        # new request with new ids, not a replay of the old command.
        secret = runtime.idempotency.secret
        salted = f"{key}\x1f{claim.generation}"
        response = await attempt(
            derived_uuid(secret, principal, salted, "command"),
            derived_uuid(secret, principal, salted, "entity"),
        )
        await runtime.idempotency.put(principal.name, key, response)
        return response, False


async def _dispatch_and_respond(
    runtime: Runtime,
    principal: Principal,
    command: Any,
    respond: Callable[[Any, Any], dict[str, Any]],
    status: int,
    expected: int | None,
    command_id: str | None,
    new_stream: bool = False,
) -> Response:
    from cairn.api.services import dispatch

    result = await dispatch(
        runtime,
        command,
        principal=principal,
        command_id=command_id,
        expected_version=expected,
        correlation_id=current_correlation_id(),
        metadata=trace_metadata(),
        new_stream=new_stream,
    )
    body = respond(command, result)
    return _json_response(body, status, body.get("version"))
