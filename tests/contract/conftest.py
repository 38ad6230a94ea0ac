from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest) -> str:
    """The backends that keep a schema in a database (every backend but memory:// and
    redis://, whose keys need no schema)."""
    fixture = "sqlite_url" if request.param == "sqlite" else "pg_url"
    return str(request.getfixturevalue(fixture))


def _fresh_redis_store(redis_url: str) -> Iterator[str]:
    """A store URL under a prefix of its own in the test Redis (which keeps nothing on disk,
    hence ``volatile=ok``); every key under the prefix (and under prefixes that extend it, as
    the stateful test makes) is deleted afterwards."""
    prefix = f"cairn-t-{uuid.uuid4().hex[:12]}"
    yield f"{redis_url}?volatile=ok&prefix={prefix}"
    with redis.Redis.from_url(redis_url) as client:
        doomed = list(client.scan_iter(match=f"{{{prefix}*", count=1000))
        if doomed:
            client.delete(*doomed)


@pytest.fixture
def redis_store_url(redis_url: str) -> Iterator[str]:
    yield from _fresh_redis_store(redis_url)


@pytest.fixture
def other_redis_store_url(redis_url: str) -> Iterator[str]:
    """A second empty Redis store (a restore's target)."""
    yield from _fresh_redis_store(redis_url)


@pytest.fixture(params=["memory", "sqlite", "postgres", "redis"])
def store_url(request: pytest.FixtureRequest) -> str:
    """Every backend's URL in turn: the one hook a contract test needs."""
    kind = request.param
    if kind == "memory":
        return "memory://"
    fixture = {"sqlite": "sqlite_url", "postgres": "pg_url", "redis": "redis_store_url"}[kind]
    return str(request.getfixturevalue(fixture))
