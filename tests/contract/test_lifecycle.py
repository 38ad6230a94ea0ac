"""SPEC §1, stream lifecycle: soft delete, truncate-before / max-age retention, snapshots."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

import cairn
from cairn import NewEvent
from cairn.errors import RetentionRefusedError
from cairn.store import EventStore, Snapshot


def ev(n: int = 0) -> NewEvent:
    return NewEvent("Happened", {"n": n})


async def test_soft_deleted_stream_reads_empty_but_stays_in_all(store: EventStore) -> None:
    await store.append("cart-1", [ev(1), ev(2)])
    await store.delete_stream("cart-1")
    assert await store.read_stream("cart-1") == []
    assert [e.stream_id for e in await store.read_all()] == ["cart-1", "cart-1"]
    assert (await store.stream_info("cart-1")).deleted is True


async def test_soft_delete_leaves_other_streams_alone(store: EventStore) -> None:
    await store.append("cart-1", [ev(1)])
    await store.append("cart-2", [ev(2)])
    await store.delete_stream("cart-1")
    assert len(await store.read_stream("cart-2")) == 1


async def test_truncate_before_hides_older_versions(store: EventStore) -> None:
    await store.append("cart-1", [ev(n) for n in range(1, 6)])
    await store.set_retention("cart-1", truncate_before=4)
    assert [e.version for e in await store.read_stream("cart-1")] == [4, 5]
    info = await store.stream_info("cart-1")
    assert (info.version, info.truncate_before) == (5, 4)


async def test_truncated_stream_keeps_its_version_for_appends(store: EventStore) -> None:
    await store.append("cart-1", [ev(1), ev(2)])
    await store.set_retention("cart-1", truncate_before=3)
    result = await store.append("cart-1", [ev(3)], expected_version=2)
    assert result.version == 3
    assert [e.version for e in await store.read_stream("cart-1")] == [3]


async def test_max_age_hides_events_older_than_the_limit(store: EventStore) -> None:
    await store.append("session-1", [ev(1)])
    await asyncio.sleep(0.25)
    await store.append("session-1", [ev(2)])
    await store.set_retention("session-1", max_age_seconds=0.2)
    assert [e.version for e in await store.read_stream("session-1")] == [2]
    assert (await store.stream_info("session-1")).max_age_seconds == pytest.approx(0.2)


#: What the order application protects (``cairn.orders.bootstrap``); the store knows no domain.
ORDER_CATEGORIES = frozenset({"order", "payment", "shipment", "inventory"})


@pytest.fixture
async def protected_store(store_url: str) -> AsyncIterator[EventStore]:
    async with cairn.open_store(store_url, protected_categories=ORDER_CATEGORIES) as store:
        yield store


@pytest.mark.parametrize("stream_id", ["order-1", "payment-1", "inventory-MUG-1"])
async def test_retention_is_refused_for_the_protected_categories(
    protected_store: EventStore, stream_id: str
) -> None:
    await protected_store.append(stream_id, [ev(1), ev(2)])
    with pytest.raises(RetentionRefusedError):
        await protected_store.set_retention(stream_id, truncate_before=2)
    assert len(await protected_store.read_stream(stream_id)) == 2


async def test_retention_of_other_categories_of_a_protecting_store_is_allowed(
    protected_store: EventStore,
) -> None:
    await protected_store.append("cart-1", [ev(1), ev(2)])
    await protected_store.set_retention("cart-1", truncate_before=2)
    assert [e.version for e in await protected_store.read_stream("cart-1")] == [2]


async def test_no_category_is_protected_unless_the_application_says_so(store: EventStore) -> None:
    await store.append("order-1", [ev(1), ev(2)])
    await store.set_retention("order-1", truncate_before=2)
    assert [e.version for e in await store.read_stream("order-1")] == [2]


async def test_stream_info_of_a_missing_stream(store: EventStore) -> None:
    info = await store.stream_info("cart-9")
    assert (info.version, info.deleted, info.truncate_before) == (0, False, 0)


def snap(stream_id: str, version: int) -> Snapshot:
    return Snapshot(
        stream_id=stream_id,
        version=version,
        state={"total": str(version), "items": [{"sku": "MUG-1"}]},
        schema="order-v1",
        recorded_at=datetime.now(UTC),
    )


async def test_saved_snapshot_loads_back(store: EventStore) -> None:
    saved = snap("order-1", 3)
    await store.save_snapshot(saved)
    loaded = await store.load_snapshot("order-1")
    assert loaded is not None
    assert (loaded.version, loaded.state, loaded.schema) == (3, saved.state, "order-v1")


async def test_missing_snapshot_is_none(store: EventStore) -> None:
    assert await store.load_snapshot("order-1") is None


async def test_newer_snapshot_replaces_an_older_one_never_the_reverse(store: EventStore) -> None:
    await store.save_snapshot(snap("order-1", 5))
    await store.save_snapshot(snap("order-1", 3))
    loaded = await store.load_snapshot("order-1")
    assert loaded is not None
    assert loaded.version == 5
    await store.save_snapshot(snap("order-1", 8))
    newer = await store.load_snapshot("order-1")
    assert newer is not None
    assert newer.version == 8


async def test_delete_snapshots_of_one_stream(store: EventStore) -> None:
    await store.save_snapshot(snap("order-1", 1))
    await store.save_snapshot(snap("order-2", 1))
    assert await store.delete_snapshots("order-1") == 1
    assert await store.load_snapshot("order-1") is None
    assert await store.load_snapshot("order-2") is not None


async def test_delete_all_snapshots(store: EventStore) -> None:
    await store.save_snapshot(snap("order-1", 1))
    await store.save_snapshot(snap("order-2", 1))
    assert await store.delete_snapshots() == 2
    assert await store.load_snapshot("order-2") is None
