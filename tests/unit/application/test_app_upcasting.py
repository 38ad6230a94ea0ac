"""ItemAdded v1 → v2 on stored fixtures: history written by the v1 system reads as v2, is never
rewritten, and folds into the right order."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from app_fixtures import memory_store

from cairn.errors import UnknownEventTypeError
from cairn.orders.codec import to_new_events
from cairn.orders.domain import orders
from cairn.orders.domain.money import Money
from cairn.orders.repositories import OrderRepositories
from cairn.store import NewEvent

FIXTURE = Path(__file__).parent / "fixtures" / "order_with_item_added_v1.json"
ORDER_ID = "0c0ffee0-0000-4000-8000-000000000001"
STREAM = f"order-{ORDER_ID}"


def stored_v1() -> list[dict[str, Any]]:
    return list(json.loads(FIXTURE.read_text()))


async def load_fixture() -> Any:
    store = await memory_store()
    await store.append(
        STREAM,
        [NewEvent(e["type"], e["data"], schema_version=e["schema_version"]) for e in stored_v1()],
        expected_version=0,
    )
    return store


async def test_a_v1_item_added_reads_back_in_the_v2_shape() -> None:
    store = await load_fixture()
    events = await store.read_stream(STREAM)
    assert events[1].schema_version == 2
    assert events[1].data == {
        "order_id": ORDER_ID,
        "sku": "MUG-1",
        "name": "",
        "quantity": 2,
        "unit_price": "12.50",
        "currency": "EUR",
    }


async def test_a_float_price_from_v1_reads_as_its_cents_without_float_noise() -> None:
    store = await load_fixture()
    events = await store.read_stream(STREAM)
    assert events[2].data["unit_price"] == "19.99"


async def test_an_order_of_v1_events_folds_to_the_right_lines_and_total() -> None:
    store = await load_fixture()
    loaded = await OrderRepositories.build(store).orders.load(STREAM)
    assert isinstance(loaded.state, orders.DraftOrder)
    lines = [(line.sku, line.quantity, line.unit_price) for line in loaded.state.order.lines]
    assert lines == [
        ("MUG-1", 3, Money.of("12.50", "EUR")),
        ("TEA-1", 3, Money.of("19.99", "EUR")),
    ]
    assert loaded.state.order.total.amount == Decimal("97.47")


async def test_upcasting_never_rewrites_the_stored_payload() -> None:
    store = await load_fixture()
    await store.read_stream(STREAM)
    raw = await store._read_stream(STREAM, 1, None, None)  # what the backend holds
    assert raw[1].schema_version == 1
    assert raw[1].data == stored_v1()[1]["data"]


async def test_new_item_added_events_are_stored_as_v2() -> None:
    store = await memory_store()

    event = orders.ItemAdded("o", "MUG-1", "Mug", 1, Decimal("1.00"), "EUR")
    [new] = to_new_events([event], [uuid.uuid4()], {})
    await store.append("order-o", [new])
    [read] = await store.read_stream("order-o")
    assert read.schema_version == 2


async def test_an_unknown_event_type_in_a_stream_is_an_explicit_error() -> None:
    store = await load_fixture()
    await store.append(STREAM, [NewEvent("OrderTeleported", {"order_id": ORDER_ID})])
    with pytest.raises(UnknownEventTypeError):
        await OrderRepositories.build(store).orders.load(STREAM)
