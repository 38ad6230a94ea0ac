"""Bearer tokens and roles (SPEC §7).

Tokens come from two places, both optional, both read once at start-up:

- ``CAIRN_TOKENS``: ``token=admin``, ``token=operator`` or ``token=customer:<customer_id>``,
  comma-separated (plaintext; handy in development and tests);
- ``CAIRN_TOKENS_FILE``: a file of lines ``<sha256 hex of the token> <role>`` (same roles;
  ``#`` starts a comment, blank lines are ignored), so no plaintext token is ever written to
  configuration. ``cairn tokens hash ROLE`` prints such a line for a token read from stdin.

Every token is kept only as its SHA-256 digest; a presented bearer token is hashed and compared
with each known digest in constant time. A malformed entry or line is a one-line start-up error
that names where it is, never what it says (it may hold a token). Auth on with no token at all
logs a warning at start-up: every request but ``/healthz`` and ``/readyz`` would get 401.

``admin`` may call everything; ``operator`` every command and query endpoint (not the admin
API); a customer creates and reads only its own orders. 401 without a valid token, 403 for a
wrong role (or a customer creating for someone else), 404 for another customer's order (so
order ids of other customers are not even confirmed to exist). Auth is on unless
``CAIRN_AUTH=disabled``; then every request acts as ``admin``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from cairn.api.problems import ProblemError
from cairn.errors import ApplicationError
from cairn.observability.logging import get_logger

if TYPE_CHECKING:
    from cairn.settings import Settings

_log = get_logger("cairn.auth")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
ROLES_HELP = "use admin, operator or customer:<customer_id>"


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


def token_digest(token: str) -> str:
    """The SHA-256 hex digest under which a token is known."""
    return hashlib.sha256(token.encode()).hexdigest()


def parse_role(role_spec: str, where: str, tag: str) -> Principal:
    """``admin``, ``operator`` or ``customer:<id>`` → a principal called ``<role>:<tag>``
    (customers: ``customer:<id>``). ``where`` says where the spec came from in an error, which
    never quotes the spec itself (a misplaced token may be in it)."""
    role_name, _, customer_id = role_spec.strip().partition(":")
    try:
        role = Role(role_name.strip().lower())
    except ValueError:
        raise ApplicationError("app.bad_tokens", f"{where}: unknown role; {ROLES_HELP}") from None
    if role is not Role.CUSTOMER:
        return Principal(role, name=f"{role.value}:{tag}")
    if not customer_id.strip():
        raise ApplicationError("app.bad_tokens", f"{where}: a customer role needs an id")
    return Principal(role, customer_id.strip(), name=f"customer:{customer_id.strip()}")


def parse_tokens(spec: str) -> dict[str, Principal]:
    """``t1=admin,t2=operator,t3=customer:c-1`` → token → principal. Bad entries are errors
    naming the entry by its place (1-based), never by its text."""
    tokens: dict[str, Principal] = {}
    for index, raw in enumerate(spec.split(","), start=1):
        entry = raw.strip()
        if not entry:
            continue
        token, sep, role_spec = entry.partition("=")
        token, role_spec = token.strip(), role_spec.strip()
        where = f"CAIRN_TOKENS entry {index}"
        if not sep or not token or not role_spec:
            raise ApplicationError("app.bad_tokens", f"{where} is not token=role")
        tokens[token] = parse_role(role_spec, where, str(len(tokens) + 1))
    return tokens


def parse_tokens_file(path: Path) -> dict[str, Principal]:
    """A ``CAIRN_TOKENS_FILE``: ``<sha256 hex> <role>`` lines → digest → principal."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "unreadable"
        raise ApplicationError("app.bad_tokens", f"CAIRN_TOKENS_FILE {path}: {reason}") from None
    digests: dict[str, Principal] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.partition("#")[0].strip()
        if not line:
            continue
        where = f"CAIRN_TOKENS_FILE {path} line {number}"
        fields = line.split()
        if len(fields) != 2 or not _SHA256_HEX.fullmatch(fields[0].lower()):
            raise ApplicationError(
                "app.bad_tokens",
                f"{where} is not '<sha256 hex of the token> <role>' (cairn tokens hash)",
            )
        digest, role_spec = fields[0].lower(), fields[1]
        digests[digest] = parse_role(role_spec, where, f"file-line-{number}")
    return digests


def build_authenticator(settings: Settings) -> Authenticator:
    """The authenticator of ``settings``: both token sources, validated; a warning when auth
    is on and there is no token at all."""
    tokens = parse_tokens(settings.tokens)
    digests = parse_tokens_file(settings.tokens_file) if settings.tokens_file else {}
    if settings.auth_enabled and not tokens and not digests:
        _log.warning(
            "auth_without_tokens",
            detail="auth is on and no token is configured (CAIRN_TOKENS, CAIRN_TOKENS_FILE): "
            "every request but /healthz and /readyz will get 401",
        )
    return Authenticator(tokens, digests=digests, enabled=settings.auth_enabled)


class Authenticator:
    """Plaintext ``tokens`` and ``digests`` (SHA-256 hex → principal) are both kept as digests."""

    def __init__(
        self,
        tokens: Mapping[str, Principal],
        *,
        enabled: bool,
        digests: Mapping[str, Principal] | None = None,
    ) -> None:
        known = {bytes.fromhex(d): p for d, p in (digests or {}).items()}
        known.update({hashlib.sha256(t.encode()).digest(): p for t, p in tokens.items()})
        self._digests = known
        self.enabled = enabled

    @property
    def token_count(self) -> int:
        return len(self._digests)

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
        presented = hashlib.sha256(token.encode()).digest()
        for known, principal in self._digests.items():
            # Constant-time comparison of digests: nothing leaks how much of a token matched.
            if hmac.compare_digest(known, presented):
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
