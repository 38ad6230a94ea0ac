"""End-to-end: the real ``cairn serve`` process, driven over HTTP like a client would.

``server`` is one fresh process (and database) per test, over SQLite and PostgreSQL; tests that
only read or are refused share a module-wide ``shared_server`` to keep the suite fast.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from e2e_server import Server

PG_ADMIN_URL = os.environ.get("CAIRN_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/cairn.db"
    return str(request.getfixturevalue("pg_url"))


def _stop(srv: Server) -> None:
    code = srv.stop()
    assert code == 0, f"cairn serve exited with {code} on SIGTERM:\n{srv.log()}"


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[Server]:
    srv = Server(database_url, tmp_path)
    try:
        yield srv
    finally:
        _stop(srv)


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30.0) as c:
        yield c


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def shared_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """One server for a whole module (tests must not depend on each other's data)."""
    workdir = tmp_path_factory.mktemp("shared")
    if request.param == "sqlite":
        srv = Server(f"sqlite:///{workdir}/cairn.db", workdir)
        try:
            yield srv
        finally:
            _stop(srv)
        return
    name = f"cairn_e2e_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable ({exc})")
    try:
        srv = Server(f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}", workdir)
        try:
            yield srv
        finally:
            _stop(srv)
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def shared(shared_server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=shared_server.url, timeout=30.0) as c:
        yield c
