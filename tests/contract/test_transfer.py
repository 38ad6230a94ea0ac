"""SPEC §16, export and import (``EventStore.read_stored``, ``transfer()``, ``restore``): a store
exported and restored into an empty one of the same backend holds the same log (positions,
versions, ids, times, metadata, sealed payloads), the same keys (a forgotten subject stays
forgotten) and the same stream settings; holes in ``$all`` survive and readers pass them; a
store that is not empty, or a file cut short, is refused and nothing is written."""

from __future__ import annotations

import io
import uuid
from collections.abc import AsyncIterator, Sequence

import pytest

import cairn
from cairn import NewEvent
from cairn.errors import ApplicationError, ConflictError
from cairn.store import EventStore, RecordedEvent
from cairn.store.personal import REDACTED, PersonalDataPolicy, PersonalFields
from cairn.store.transfer import ExportReader, StoreState, export_store

POLICY = PersonalDataPolicy(
    {"AccountOpened": PersonalFields("customer_id", frozenset({"name", "email"}))}
)


@pytest.fixture
def target_url(store_url: str, request: pytest.FixtureRequest, tmp_path: object) -> str:
    """A second empty store of the same backend."""
    if store_url.startswith("memory"):
        return "memory://"
    if store_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path}/target.db"
    if store_url.startswith("redis"):
        return str(request.getfixturevalue("other_redis_store_url"))
    return str(request.getfixturevalue("other_pg_url"))


@pytest.fixture
async def source(store_url: str) -> AsyncIterator[EventStore]:
    async with cairn.open_store(store_url, personal_data=POLICY) as store:
        yield store


@pytest.fixture
async def target(target_url: str) -> AsyncIterator[EventStore]:
    async with cairn.open_store(target_url, personal_data=POLICY) as store:
        yield store


def opened(customer: str, name: str) -> NewEvent:
    return NewEvent(
        "AccountOpened",
        {"customer_id": customer, "name": name, "email": f"{name}@x.test"},
        metadata={"correlation_id": "k-1", "user": "ü"},
    )


async def seed(store: EventStore) -> None:
    await store.append("account-1", [opened("c-1", "Ada")])
    await store.append("account-2", [opened("c-2", "Grace")])
    await store.append("note-1", [NewEvent("Noted", {"n": i}, schema_version=2) for i in range(5)])
    await store.append("note-2", [NewEvent("Noted", {"nested": {"a": [1, 2.5, None]}})])
    await store.delete_stream("note-2")
    await store.set_retention("note-1", truncate_before=3, max_age_seconds=3600.0)
    assert await store.forget_subject("c-2")


async def export_text(store: EventStore) -> str:
    out = io.StringIO()
    await export_store(store, out, source_backend="test", cairn_version="0")
    return out.getvalue()


async def everything(store: EventStore) -> list[RecordedEvent]:
    return await store.read_stored(after=0, limit=10_000)


async def test_a_restored_store_holds_the_same_log_keys_and_settings(
    source: EventStore, target: EventStore
) -> None:
    await seed(source)
    reader = ExportReader(io.StringIO(await export_text(source)))
    assert reader.head == await source.head_position()
    assert await target.restore(reader.state, reader.batches()) == reader.head

    assert await everything(target) == await everything(source)
    assert "Ada" not in str(await everything(target))  # sealed as stored
    assert await target.read_all() == await source.read_all()
    (ada,) = await target.read_stream("account-1")
    assert ada.data["name"] == "Ada"
    (grace,) = await target.read_stream("account-2")
    assert grace.data["name"] == REDACTED
    for stream in ("note-1", "note-2", "account-1"):
        assert await target.stream_info(stream) == await source.stream_info(stream)
        assert await target.read_stream(stream) == await source.read_stream(stream)
    # Appends continue after the imported head; a new subject's key works.
    result = await target.append("account-3", [opened("c-3", "Alan")])
    assert result.position == reader.head + 1
    assert (await target.read_stream("account-3"))[0].data["name"] == "Alan"
    assert await target.stream_version("note-1") == 5


def _event(position: int, stream: str, version: int) -> RecordedEvent:
    from datetime import UTC, datetime

    return RecordedEvent(
        uuid.uuid4(), stream, "Noted", {"p": position}, {}, version, position, datetime.now(UTC)
    )


async def _batches(
    *batches: Sequence[RecordedEvent],
) -> AsyncIterator[Sequence[RecordedEvent]]:
    for batch in batches:
        yield batch


async def test_holes_in_the_imported_log_are_kept_and_passed(target: EventStore) -> None:
    log = [_event(1, "a-1", 1), _event(2, "a-1", 2), _event(5, "b-1", 1), _event(9, "a-1", 3)]
    assert await target.restore(StoreState(), _batches(log[:2], log[2:])) == 9
    assert [e.position for e in await target.read_all()] == [1, 2, 5, 9]
    assert [e.position for e in await target.read_all(after=2)] == [5, 9]
    assert await target.head_position() == 9
    assert await target.stream_version("a-1") == 3
    result = await target.append("a-1", [NewEvent("Noted", {})], expected_version=3)
    assert (result.position, result.version) == (10, 4)


async def test_a_store_that_is_not_empty_is_refused_and_keeps_what_it_had(
    source: EventStore, target: EventStore
) -> None:
    await seed(source)
    text = await export_text(source)
    await target.append("other-1", [NewEvent("Noted", {})])
    before = await everything(target)
    assert not await target.transfer().is_empty()
    reader = ExportReader(io.StringIO(text))
    with pytest.raises(ConflictError) as refused:
        await target.restore(reader.state, reader.batches())
    assert refused.value.code == "store.not_empty"
    assert await everything(target) == before


async def test_a_file_cut_short_writes_nothing(source: EventStore, target: EventStore) -> None:
    await seed(source)
    lines = (await export_text(source)).splitlines(keepends=True)
    reader = ExportReader(io.StringIO("".join(lines[:-2])))
    with pytest.raises(ApplicationError) as refused:
        await target.restore(
            reader.state,
            reader.batches(),
        )
    assert refused.value.code == "export.truncated"
    assert await target.transfer().is_empty()
    assert await everything(target) == []
