"""``Annotated`` dependency aliases the routes declare: the runtime and the caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from cairn.api.auth import Principal, Role, require_role
from cairn.api.problems import ProblemError
from cairn.api.runtime import Runtime


async def get_runtime(request: Request) -> Runtime:
    runtime = getattr(request.app.state, "runtime", None)
    if runtime is None:  # pragma: no cover - only before the lifespan has run
        raise ProblemError(
            503, "app.starting", "the service is starting", headers={"Retry-After": "1"}
        )
    assert isinstance(runtime, Runtime)
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


#: The OpenAPI security scheme ``bearerAuth`` of every operation that resolves the caller (so
#: Swagger UI's "Authorize" sends the token). It only declares: the Authenticator reads the
#: header itself, to tell a missing token from a malformed one.
BEARER = HTTPBearer(
    scheme_name="bearerAuth",
    description="A token from CAIRN_TOKENS or CAIRN_TOKENS_FILE, with the role admin, operator "
    "or customer:<id> (docs/operations.md).",
    auto_error=False,
)


async def get_principal(
    runtime: RuntimeDep,
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)],
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Principal:
    return runtime.auth.authenticate(authorization)


CurrentUser = Annotated[Principal, Depends(get_principal)]


async def _any_user(principal: CurrentUser) -> Principal:
    """Any authenticated role (customers are then restricted to their own data)."""
    return principal


async def _staff(principal: CurrentUser) -> Principal:
    require_role(principal, Role.OPERATOR)
    return principal


async def _admin(principal: CurrentUser) -> Principal:
    require_role(principal, Role.ADMIN)
    return principal


AnyUser = Annotated[Principal, Depends(_any_user)]
Staff = Annotated[Principal, Depends(_staff)]
Admin = Annotated[Principal, Depends(_admin)]
