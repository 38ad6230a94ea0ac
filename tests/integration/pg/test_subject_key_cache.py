"""The PostgreSQL key store keeps the keys it hands out for writing (one round trip less per
event with personal data); the append checks them, so a cached key another process deleted
is never written with (the contract suite's forget tests)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

import cairn
from cairn.store import EventStore
from cairn.store.personal import KeyStore, PersonalDataPolicy, PersonalFields, new_key

POLICY = PersonalDataPolicy(
    {"AccountOpened": PersonalFields("customer_id", frozenset({"name", "email"}))}
)


@pytest.fixture
async def store(pg_url: str) -> AsyncIterator[EventStore]:
    async with cairn.open_store(pg_url, personal_data=POLICY) as store:
        yield store


def keys_of(store: EventStore) -> KeyStore:
    assert store.personal is not None
    return store.personal.keys


async def replace_key_behind_its_back(store: EventStore, subject: str) -> uuid.UUID:
    """What another process's forget and next write leave: the subject has another key."""
    key_id = uuid.uuid4()
    async with store._connection() as conn:
        await conn.execute("DELETE FROM subject_keys WHERE subject = %s", (subject,))
        await conn.execute(
            "INSERT INTO subject_keys (key_id, subject, key) VALUES (%s, %s, %s)",
            (key_id, subject, new_key()),
        )
    return key_id


async def test_a_key_for_writing_is_looked_up_once(store: EventStore) -> None:
    first = await keys_of(store).key_for_writing("c-1")
    await replace_key_behind_its_back(store, "c-1")
    assert await keys_of(store).key_for_writing("c-1") == first


async def test_dropping_a_cached_key_looks_it_up_again(store: EventStore) -> None:
    first = await keys_of(store).key_for_writing("c-1")
    now = await replace_key_behind_its_back(store, "c-1")
    keys_of(store).drop_cached([first.key_id])
    assert (await keys_of(store).key_for_writing("c-1")).key_id == now


async def test_forgetting_a_subject_drops_its_cached_key(store: EventStore) -> None:
    first = await keys_of(store).key_for_writing("c-1")
    assert await store.forget_subject("c-1")
    assert (await keys_of(store).key_for_writing("c-1")).key_id != first.key_id


async def test_an_append_sealed_with_a_deleted_key_is_sealed_again_with_the_current_one(
    store: EventStore, pg_url: str
) -> None:
    opened = cairn.NewEvent(
        "AccountOpened", {"customer_id": "c-1", "name": "Ada", "email": "ada@x.test"}
    )
    await store.append("account-1", [opened])
    now = await replace_key_behind_its_back(store, "c-1")
    await store.append("account-1", [cairn.NewEvent(opened.type, opened.data)])
    async with cairn.open_store(pg_url) as raw:  # no policy: the fields as stored
        _, again = await raw.read_stream("account-1")
    assert again.data["name"]["$sealed"].startswith(f"{now}:")
    assert [e.data["name"] for e in await store.read_stream("account-1")] == [
        "[redacted]",
        "Ada",
    ]
