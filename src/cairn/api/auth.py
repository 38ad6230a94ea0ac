"""Bearer tokens and roles (SPEC §7).

``CAIRN_TOKENS`` lists ``token=admin``, ``token=operator`` or ``token=customer:<customer_id>``,
comma-separated. ``admin`` may call everything; ``operator`` every command and query endpoint
(not the admin API); a customer creates and reads only its own orders. 401 without a valid
token, 403 for a wrong role (or a customer creating for someone else), 404 for another
customer's order (so order ids of other customers are not even confirmed to exist).
Auth is on unless ``CAIRN_AUTH=disabled``; then every request acts as ``admin``.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from enum import StrEnum

from cairn.api.problems import ProblemError
from cairn.errors import ApplicationError


class Role(StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"
    CUSTOMER = "customer"


@dataclass(frozen=True, slots=True)
class Principal:
    role: Role
    customer_id: str | None = None
    #: A stable, non-secret name for logs and event metadata (``user``).
    name: str = "anonymous"

    @property
    def is_customer(self) -> bool:
        return self.role is Role.CUSTOMER

    def can_see_customer(self, customer_id: str | None) -> bool:
        return not self.is_customer or customer_id == self.customer_id


ANONYMOUS_ADMIN = Principal(Role.ADMIN, name="anonymous")


def parse_tokens(spec: str) -> dict[str, Principal]:
    """``t1=admin,t2=operator,t3=customer:c-1`` → token → principal. Bad entries are errors."""
    tokens: dict[str, Principal] = {}
    for raw in spec.split(","):
        entry = raw.strip()
        if not entry:
            continue
        token, sep, role_spec = entry.partition("=")
        token, role_spec = token.strip(), role_spec.strip()
        if not sep or not token or not role_spec:
            raise ApplicationError(
                "app.bad_tokens", f"CAIRN_TOKENS entry {entry!r} is not token=role"
            )
        role_name, _, customer_id = role_spec.partition(":")
        try:
            role = Role(role_name.strip().lower())
        except ValueError:
            raise ApplicationError(
                "app.bad_tokens",
                f"CAIRN_TOKENS entry for role {role_name!r}: use admin, operator or customer:<id>",
            ) from None
        if role is Role.CUSTOMER:
            if not customer_id.strip():
                raise ApplicationError(
                    "app.bad_tokens", "a customer token needs an id: token=customer:<customer_id>"
                )
            name = f"customer:{customer_id.strip()}"
            tokens[token] = Principal(role, customer_id.strip(), name=name)
        else:
            tokens[token] = Principal(role, name=f"{role.value}:{len(tokens) + 1}")
    return tokens


class Authenticator:
    def __init__(self, tokens: dict[str, Principal], *, enabled: bool) -> None:
        self._tokens = tokens
        self.enabled = enabled

    def authenticate(self, authorization: str | None) -> Principal:
        if not self.enabled:
            return ANONYMOUS_ADMIN
        if not authorization:
            raise ProblemError(
                401,
                "auth.missing_token",
                "a bearer token is required",
                headers={"WWW-Authenticate": 'Bearer realm="cairn"'},
            )
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise ProblemError(
                401,
                "auth.invalid_token",
                "use an Authorization: Bearer <token> header",
                headers={"WWW-Authenticate": 'Bearer realm="cairn", error="invalid_request"'},
            )
        for known, principal in self._tokens.items():
            # Constant-time comparison: do not leak how much of a token matched.
            if hmac.compare_digest(known.encode(), token.encode()):
                return principal
        raise ProblemError(
            401,
            "auth.invalid_token",
            "the bearer token is not valid",
            headers={"WWW-Authenticate": 'Bearer realm="cairn", error="invalid_token"'},
        )


def require_role(principal: Principal, *roles: Role) -> None:
    if principal.role is Role.ADMIN or principal.role in roles:
        return
    raise ProblemError(
        403,
        "auth.forbidden",
        f"role {principal.role.value!r} may not call this endpoint",
    )


def require_same_customer(principal: Principal, customer_id: str) -> None:
    """For creates: a customer acts only for itself (403 otherwise)."""
    if principal.is_customer and principal.customer_id != customer_id:
        raise ProblemError(
            403,
            "auth.forbidden_customer",
            "a customer token may only create orders for its own customer_id",
        )
