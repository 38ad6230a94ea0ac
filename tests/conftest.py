"""Shared fixtures: real services, one private database per test, no silent skips.

Every service a test asks for must be reachable; if it is not, the test fails with a message
naming the service (in CI and locally alike). ``.ci/run`` starts the services first.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator

import psycopg
import pytest

PG_ADMIN_URL = os.environ.get("CAIRN_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("CAIRN_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
AMQP_URL = os.environ.get("CAIRN_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
NATS_URL = os.environ.get("CAIRN_TEST_NATS_URL", "nats://127.0.0.1:4222")


def require_service(name: str, host: str, port: int) -> None:
    """Fail (never skip) when a service the test needs is down."""
    try:
        with socket.create_connection((host, port), timeout=3):
            return
    except OSError as exc:
        pytest.fail(f"{name} is not reachable on {host}:{port} ({exc}); start it (see .ci/run)")


def _pg_base(url: str) -> str:
    return url.rsplit("/", 1)[0]


def _fresh_pg_database() -> Iterator[str]:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    name = f"cairn_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{_pg_base(PG_ADMIN_URL)}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test, dropped afterwards."""
    yield from _fresh_pg_database()


@pytest.fixture
def other_pg_url() -> Iterator[str]:
    """A second fresh, empty PostgreSQL database (a restore's target), dropped afterwards."""
    yield from _fresh_pg_database()


@pytest.fixture
def sqlite_url(tmp_path: object) -> str:
    return f"sqlite:///{tmp_path}/cairn.db"


@pytest.fixture
def redis_url() -> str:
    require_service("Redis", "127.0.0.1", 6379)
    return REDIS_URL


@pytest.fixture
def amqp_url() -> str:
    require_service("RabbitMQ", "127.0.0.1", 5672)
    return AMQP_URL


@pytest.fixture
def nats_url() -> str:
    require_service("NATS", "127.0.0.1", 4222)
    return NATS_URL


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest) -> str:
    """Every backend's URL in turn: the one hook a contract test needs."""
    kind = request.param
    if kind == "memory":
        return "memory://"
    if kind == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[object]:
    import cairn

    async with cairn.open_store(store_url) as s:
        yield s
