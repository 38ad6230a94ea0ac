"""Bearer tokens and roles, SPEC §7."""

from __future__ import annotations

import httpx
import pytest
from api_tokens import ADMIN, CUSTOMER_1, OPERATOR

from cairn.api.auth import Authenticator, Principal, Role, parse_tokens
from cairn.api.problems import ProblemError
from cairn.errors import ApplicationError


def test_tokens_parse_into_roles_and_customer_ids() -> None:
    tokens = parse_tokens("t1=admin, t2=operator ,t3=customer:c-1")
    assert tokens["t1"].role is Role.ADMIN
    assert tokens["t2"].role is Role.OPERATOR
    assert tokens["t3"] == Principal(Role.CUSTOMER, "c-1", name="customer:c-1")


@pytest.mark.parametrize("spec", ["t1", "t1=root", "t1=customer", "=admin"])
def test_malformed_token_entries_are_refused(spec: str) -> None:
    with pytest.raises(ApplicationError):
        parse_tokens(spec)


def test_missing_token_is_401() -> None:
    auth = Authenticator(parse_tokens("t=admin"), enabled=True)
    with pytest.raises(ProblemError) as info:
        auth.authenticate(None)
    assert info.value.status == 401


def test_disabled_auth_acts_as_admin() -> None:
    auth = Authenticator({}, enabled=False)
    assert auth.authenticate(None).role is Role.ADMIN


async def test_admin_health_needs_a_token(bare_client: httpx.AsyncClient) -> None:
    r = await bare_client.get("/api/v1/admin/health")
    assert r.status_code == 401
    assert r.json()["code"] == "auth.missing_token"


async def test_admin_health_refuses_an_unknown_token(bare_client: httpx.AsyncClient) -> None:
    r = await bare_client.get("/api/v1/admin/health", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401
    assert r.json()["code"] == "auth.invalid_token"


@pytest.mark.parametrize("headers", [OPERATOR, CUSTOMER_1])
async def test_admin_routes_are_forbidden_to_other_roles(
    bare_client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    r = await bare_client.get("/api/v1/admin/health", headers=headers)
    assert r.status_code == 403
    assert r.json()["code"] == "auth.forbidden"


async def test_metrics_need_an_admin_token(bare_client: httpx.AsyncClient) -> None:
    assert (await bare_client.get("/metrics")).status_code == 401
    assert (await bare_client.get("/metrics", headers=ADMIN)).status_code == 200
