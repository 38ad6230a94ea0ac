"""``Annotated`` dependency aliases the routes declare: the runtime and the caller.

Each level of dependency costs FastAPI a recursive solve on every request (sub-dependencies
are solved before its cache is looked at), so the caller is one level: ``get_principal`` reads
the runtime and the header from the request itself, and the role checks take the principal
directly. The bearer scheme stays a sub-dependency only so that OpenAPI declares it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPBearer

from cairn.api.auth import Principal, Role, require_role
from cairn.api.problems import ProblemError
from cairn.api.runtime import Runtime


def runtime_of(request: Request) -> Runtime:
    runtime = getattr(request.app.state, "runtime", None)
    if runtime is None:  # pragma: no cover - only before the lifespan has run
        raise ProblemError(
            503, "app.starting", "the service is starting", headers={"Retry-After": "1"}
        )
    assert isinstance(runtime, Runtime)
    return runtime


async def get_runtime(request: Request) -> Runtime:
    return runtime_of(request)


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


class _DeclaredBearer(HTTPBearer):
    """The scheme as OpenAPI declares it; at run time it reads nothing (the Authenticator reads
    the header itself, to tell a missing token from a malformed one), which spares parsing the
    header twice per request."""

    async def __call__(self, request: Request) -> None:  # type: ignore[override]
        return None


#: The OpenAPI security scheme ``bearerAuth`` of every operation that resolves the caller (so
#: Swagger UI's "Authorize" sends the token). It only declares (see :class:`_DeclaredBearer`).
BEARER = _DeclaredBearer(
    scheme_name="bearerAuth",
    description="A token from CAIRN_TOKENS or CAIRN_TOKENS_FILE, with the role admin, operator "
    "or customer:<id> (docs/operations.md).",
    auto_error=False,
)

_Declared = Annotated[None, Security(BEARER)]


async def get_principal(request: Request, _bearer: _Declared) -> Principal:
    """Any authenticated role (customers are then restricted to their own data)."""
    return runtime_of(request).auth.authenticate(request.headers.get("authorization"))


async def _staff(request: Request, _bearer: _Declared) -> Principal:
    principal = await get_principal(request, None)
    require_role(principal, Role.OPERATOR)
    return principal


async def _admin(request: Request, _bearer: _Declared) -> Principal:
    principal = await get_principal(request, None)
    require_role(principal, Role.ADMIN)
    return principal


CurrentUser = Annotated[Principal, Depends(get_principal)]
AnyUser = CurrentUser
Staff = Annotated[Principal, Depends(_staff)]
Admin = Annotated[Principal, Depends(_admin)]
