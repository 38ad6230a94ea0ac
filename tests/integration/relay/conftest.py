from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from relay_helpers import delete_jetstream, delete_redis_key


@pytest.fixture
def topic() -> str:
    """A topic no other test (or run) uses."""
    return f"cairntest.{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def nats_topic(nats_url: str, topic: str) -> AsyncIterator[str]:
    yield topic
    await delete_jetstream(nats_url, topic)


@pytest.fixture
async def redis_topic(redis_url: str, topic: str) -> AsyncIterator[str]:
    yield topic
    await delete_redis_key(redis_url, topic)
