"""End-to-end: the real ``cairn serve`` process, driven over HTTP like a client would."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from e2e_server import Server


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/cairn.db"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[Server]:
    srv = Server(database_url, tmp_path)
    try:
        yield srv
    finally:
        code = srv.stop()
        assert code == 0, f"cairn serve exited with {code} on SIGTERM:\n{srv.log()}"


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30.0) as c:
        yield c
