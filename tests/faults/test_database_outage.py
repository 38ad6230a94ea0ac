"""A PostgreSQL outage under load (SPEC §12): the test's database refuses connections and loses
its sessions for 5 s while six clients create and place orders."""

from __future__ import annotations

import asyncio
from pathlib import Path

from e2e_server import Server
from scenario import (
    PG_ADMIN_URL,
    database_outage,
    problems,
    report,
    settled,
    setup_catalogue,
    under_load,
)


def test_a_database_outage_under_load_loses_nothing_and_answers_503(
    pg_url: str, tmp_path: Path
) -> None:
    server = Server(pg_url, tmp_path)
    try:
        asyncio.run(setup_catalogue(server.url))
        load, started, ended = asyncio.run(
            under_load(server.url, database_outage(PG_ADMIN_URL, pg_url, 5.0))
        )
        after = asyncio.run(settled(server.url, load, since=ended, timeout=30.0))
        print(report("database outage", load, started, ended, after).table())
        assert after.lost == []
        assert after.behind == []
        assert problems(load) == []
        assert after.recovery_s < 15.0
    finally:
        server.stop()
        print(server.log())
