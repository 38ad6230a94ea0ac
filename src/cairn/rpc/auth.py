"""Who is calling: the ``authorization: Bearer <token>`` metadata of a call, checked by the
same :class:`~cairn.api.auth.Authenticator` and roles as REST (SPEC §7). A missing or unknown
token is ``UNAUTHENTICATED``, a wrong role ``PERMISSION_DENIED`` (``cairn.rpc.errors``).

Each handler asks for its caller first thing, rather than an interceptor doing it for every
method, because the health and reflection services must stay open to anyone (probes, tools)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cairn.api.auth import Principal, Role, require_role
from cairn.api.runtime import Runtime

if TYPE_CHECKING:
    import grpc


def metadata_value(context: grpc.aio.ServicerContext[Any, Any], key: str) -> str | None:
    """The first value of the invocation metadata ``key`` (lower-case, as gRPC sends keys)."""
    for name, value in context.invocation_metadata() or ():
        if name == key:
            return value.decode("latin-1") if isinstance(value, bytes) else value
    return None


def caller(runtime: Runtime, context: grpc.aio.ServicerContext[Any, Any]) -> Principal:
    """The principal of the call's bearer token (any role)."""
    return runtime.auth.authenticate(metadata_value(context, "authorization"))


def admin(runtime: Runtime, context: grpc.aio.ServicerContext[Any, Any]) -> Principal:
    """The caller, who must be an admin (``cairn.v1.EventStore``, like REST's admin routes)."""
    principal = caller(runtime, context)
    require_role(principal, Role.ADMIN)
    return principal
