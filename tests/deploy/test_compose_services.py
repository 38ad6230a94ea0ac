"""compose.yaml's ``services`` profile: seed 004's command, query and admin APIs on 8080, 8081
and 8082, each a ``cairn serve --only <role>`` without workers, started after the migration."""

from __future__ import annotations

from typing import Any

import pytest
from deploy_files import compose, known_env_name

from cairn.api.service_roles import parse_roles
from cairn.settings import Settings

SERVICES = {
    "command-api": ("command", 8080),
    "query-api": ("query", 8081),
    "admin-api": ("admin", 8082),
}


def _service(name: str) -> dict[str, Any]:
    service: dict[str, Any] = compose()["services"][name]
    return service


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_each_api_serves_its_role_on_its_seed_004_port(name: str) -> None:
    role, port = SERVICES[name]
    service = _service(name)
    command = service["command"]
    assert command[:4] == ["serve", "--only", role, "--no-workers"]
    assert parse_roles(command[2]) == {role}
    assert service["environment"]["CAIRN_PORT"] == str(port)
    assert Settings(port=service["environment"]["CAIRN_PORT"]).port == port
    assert service["ports"] == [f"{port}:{port}"]
    assert service["profiles"] == ["services"]


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_each_api_waits_for_the_migration_and_never_migrates(name: str) -> None:
    service = _service(name)
    assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert service["environment"]["CAIRN_AUTO_MIGRATE"] == "false"
    assert all(known_env_name(n) for n in service["environment"])
    assert any("/readyz" in part for part in service["healthcheck"]["test"])


def test_the_default_layout_is_unchanged_without_the_profile() -> None:
    services = compose()["services"]
    assert "profiles" not in services["api"]
    assert "profiles" not in services["worker"]
