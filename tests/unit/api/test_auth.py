"""Bearer tokens and roles, SPEC §7."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest
from api_tokens import ADMIN, CUSTOMER_1, OPERATOR
from structlog.testing import capture_logs

from cairn.api.app import create_app
from cairn.api.auth import (
    Authenticator,
    Principal,
    Role,
    build_authenticator,
    parse_tokens,
    parse_tokens_file,
)
from cairn.api.problems import ProblemError
from cairn.errors import ApplicationError
from cairn.settings import Settings


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


# --- error messages never print a token ------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "where"),
    [
        ("ok=admin,s3cr3t-token", "entry 2 is not token=role"),
        ("s3cr3t-token=", "entry 1 is not token=role"),
        ("admin=s3cr3t-token", "entry 1: unknown role"),
        ("s3cr3t-token=customer", "entry 1: a customer role needs an id"),
    ],
)
def test_a_malformed_entry_is_named_by_place_never_by_text(spec: str, where: str) -> None:
    with pytest.raises(ApplicationError) as info:
        parse_tokens(spec)
    message = str(info.value)
    assert "s3cr3t" not in message
    assert where in message
    assert "\n" not in message
    assert info.value.code == "app.bad_tokens"


# --- CAIRN_TOKENS_FILE: hashed tokens ---------------------------------------------------------


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def test_a_tokens_file_holds_only_digests(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(
        "# cairn tokens\n"
        f"{_digest('adm-secret')} admin   # the on-call admin\n"
        "\n"
        f"{_digest('ops-secret').upper()} operator\n"
        f"  {_digest('ada-secret')}\tcustomer:c-1\n",
        encoding="utf-8",
    )
    digests = parse_tokens_file(path)
    assert digests[_digest("adm-secret")] == Principal(Role.ADMIN, name="admin:file-line-2")
    assert digests[_digest("ops-secret")].role is Role.OPERATOR
    assert digests[_digest("ada-secret")] == Principal(Role.CUSTOMER, "c-1", name="customer:c-1")
    auth = Authenticator({}, digests=digests, enabled=True)
    assert auth.authenticate("Bearer adm-secret").role is Role.ADMIN
    assert auth.authenticate("bearer ops-secret").role is Role.OPERATOR
    assert auth.authenticate("Bearer ada-secret").customer_id == "c-1"
    for wrong in ("Bearer adm-secre", "Bearer " + _digest("adm-secret"), "Bearer x"):
        with pytest.raises(ProblemError) as info:
            auth.authenticate(wrong)
        assert info.value.code == "auth.invalid_token"


@pytest.mark.parametrize(
    "line",
    [
        "plaintext-s3cr3t admin",  # a token where its digest belongs
        "plaintext-s3cr3t",
        f"{'a' * 63} admin",
        f"{'a' * 64} root",
        f"{'a' * 64} admin extra-s3cr3t",
        f"{'a' * 64} customer:",
    ],
)
def test_a_malformed_tokens_file_line_is_one_line_without_its_text(
    tmp_path: Path, line: str
) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"# header\n{_digest('x')} admin\n{line}\n", encoding="utf-8")
    with pytest.raises(ApplicationError) as info:
        parse_tokens_file(path)
    message = str(info.value)
    assert f"CAIRN_TOKENS_FILE {path} line 3" in message
    assert "s3cr3t" not in message
    assert "plaintext" not in message
    assert "\n" not in message


def test_a_missing_tokens_file_is_a_start_up_error(tmp_path: Path) -> None:
    settings = Settings(database_url="memory://", tokens_file=tmp_path / "nope")
    with pytest.raises(ApplicationError, match="No such file"):
        create_app(settings)


def test_both_sources_combine(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"{_digest('from-file')} operator\n", encoding="utf-8")
    auth = build_authenticator(
        Settings(database_url="memory://", tokens="plain=admin", tokens_file=path)
    )
    assert auth.token_count == 2
    assert auth.authenticate("Bearer plain").role is Role.ADMIN
    assert auth.authenticate("Bearer from-file").role is Role.OPERATOR


def test_auth_on_without_any_token_warns_at_start_up() -> None:
    with capture_logs() as logs:
        create_app(Settings(database_url="memory://", tokens="", auth="enabled"))
    warnings = [entry for entry in logs if entry["event"] == "auth_without_tokens"]
    assert len(warnings) == 1
    assert warnings[0]["log_level"] == "warning"
    with capture_logs() as logs:
        create_app(Settings(database_url="memory://", tokens="", auth="disabled"))
        create_app(Settings(database_url="memory://", tokens="t=admin"))
    assert not [entry for entry in logs if entry["event"] == "auth_without_tokens"]


def test_a_malformed_cairn_tokens_stops_the_app_before_it_serves() -> None:
    with pytest.raises(ApplicationError) as info:
        create_app(Settings(database_url="memory://", tokens="s3cr3t"))
    assert "s3cr3t" not in str(info.value)
