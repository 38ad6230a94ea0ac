"""``migrate_database``: the store's schema and every component's, once, on both dialects."""

from __future__ import annotations

import pytest

from cairn.api.idempotency import API
from cairn.relay.schema import RELAY, RELAY_SCHEMAS
from cairn.sql.checkpoints import CHECKPOINTS
from cairn.sql.migrate import migrate_database


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url"))


async def test_the_store_then_each_schema_is_applied_and_a_second_run_applies_nothing(
    url: str,
) -> None:
    applied = await migrate_database(url, [*RELAY_SCHEMAS, CHECKPOINTS, API])
    assert "0001_events" in applied
    ours = [name for name in applied if "." in name]
    assert ours == [
        "checkpoints.0001_checkpoints",
        "relay.0001_relay_tables",
        "relay.0002_checkpoints_moved",
        "api.0001_idempotency",
        "api.0002_derivation_secret",
        "api.0003_idempotency_created_at",
    ]
    assert await migrate_database(url, [CHECKPOINTS, RELAY, API]) == []


async def test_a_memory_store_has_nothing_to_migrate() -> None:
    assert await migrate_database("memory://", [CHECKPOINTS]) == []
