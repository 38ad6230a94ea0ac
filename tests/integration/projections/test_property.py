"""Property: read models built live, in random batch sizes interleaved with appends, equal the
read models of a full rebuild from position 0 (sqlite and postgres)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import cairn
from cairn.orders.components import build_projections
from cairn.projections import RunnerConfig
from cairn.store.base import EventStore, NewEvent

from .read_model_dump import dump
from .scenario import item_added

SKUS = ["MUG-1", "TEA-2", "PEN-3"]
PRICES = {"MUG-1": "12.50", "TEA-2": "4.99", "PEN-3": "0.10"}

# One op: (kind, order slot, sku index, quantity)
op = st.tuples(
    st.sampled_from(
        ["create", "add", "remove", "place", "cancel", "confirm", "ship", "deliver", "stock"]
    ),
    st.integers(0, 4),
    st.integers(0, 2),
    st.integers(1, 5),
)


@dataclass
class _World:
    """Just enough state to emit a sequence the domain could have written."""

    orders: dict[int, tuple[str, str, dict[str, int]]] = field(default_factory=dict)
    registered: bool = False
    numbers: int = 0


async def _apply_op(
    store: EventStore, world: _World, kind: str, slot: int, sku_i: int, q: int
) -> None:
    sku = SKUS[sku_i]
    if not world.registered:
        for s in SKUS:
            await store.append(
                f"inventory-{s}",
                [
                    NewEvent(
                        "ProductRegistered",
                        {"sku": s, "name": s.title(), "unit_price": PRICES[s], "currency": "EUR"},
                    )
                ],
            )
        world.registered = True
    if kind == "stock":
        await store.append(
            f"inventory-{sku}", [NewEvent("StockReplenished", {"sku": sku, "quantity": q})]
        )
        return
    current = world.orders.get(slot)
    if kind == "create" or current is None:
        oid = str(uuid.uuid4())
        world.numbers += 1
        await store.append(
            f"order-{oid}",
            [
                NewEvent(
                    "OrderCreated",
                    {
                        "order_id": oid,
                        "order_number": f"ORD-2026-{world.numbers:06d}",
                        "customer_id": f"c-{slot % 3}",
                        "customer_name": f"Name {slot}",
                        "customer_email": f"c{slot}@example.com",
                        "currency": "EUR",
                        "shipping_address": {},
                    },
                )
            ],
        )
        world.orders[slot] = (oid, "draft", {})
        return
    oid, status, items = current
    emit: list[NewEvent] = []
    if kind == "add" and status == "draft":
        emit.append(item_added(oid, sku, sku.title(), q, PRICES[sku]))
        items = {**items, sku: items.get(sku, 0) + q}
    elif kind == "remove" and status == "draft" and sku in items:
        emit.append(NewEvent("ItemRemoved", {"order_id": oid, "sku": sku}))
        items = {k: v for k, v in items.items() if k != sku}
    elif kind == "place" and status == "draft" and items:
        from decimal import Decimal

        total = sum((Decimal(PRICES[k]) * v for k, v in items.items()), Decimal("0"))
        emit.append(
            NewEvent(
                "OrderPlaced",
                {
                    "order_id": oid,
                    "payment_method": "tok_ok",
                    "total": str(total),
                    "currency": "EUR",
                    "items": [],
                },
            )
        )
        for k, v in items.items():
            await store.append(
                f"inventory-{k}",
                [NewEvent("InventoryReserved", {"sku": k, "order_id": oid, "quantity": v})],
            )
        status = "placed"
    elif kind == "cancel" and status in ("draft", "placed", "confirmed"):
        emit.append(
            NewEvent("OrderCancelled", {"order_id": oid, "reason": "r", "previous_status": status})
        )
        if status != "draft":
            for k, v in items.items():
                await store.append(
                    f"inventory-{k}",
                    [NewEvent("InventoryReleased", {"sku": k, "order_id": oid, "quantity": v})],
                )
        status = "cancelled"
    elif kind == "confirm" and status == "placed":
        emit.append(
            NewEvent("OrderConfirmed", {"order_id": oid, "payment_id": "p", "shipment_id": "s"})
        )
        status = "confirmed"
    elif kind == "ship" and status == "confirmed":
        emit.append(NewEvent("OrderShipped", {"order_id": oid, "shipment_id": "s"}))
        for k, v in items.items():
            await store.append(
                f"inventory-{k}",
                [NewEvent("StockCommitted", {"sku": k, "order_id": oid, "quantity": v})],
            )
        status = "shipped"
    elif kind == "deliver" and status == "shipped":
        emit.append(NewEvent("OrderDelivered", {"order_id": oid}))
        status = "delivered"
    if emit:
        await store.append(f"order-{oid}", emit)
    world.orders[slot] = (oid, status, items)


@pytest.fixture(params=["sqlite", "postgres"])
def durable_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("pg_url" if request.param == "postgres" else "sqlite_url"))


def test_live_build_in_random_batches_equals_a_full_rebuild(durable_url: str) -> None:
    """One store per backend; every example appends more and re-checks the whole state."""

    async def scenario(chunks: list[tuple[list[Any], int]]) -> None:
        async with cairn.open_store(durable_url) as store:
            world = _World()
            engine = build_projections(durable_url, store, config=RunnerConfig())
            try:
                for ops, batch in chunks:
                    for o in ops:
                        await _apply_op(store, world, *o)
                    engine.config.batch_size = batch
                    await engine.run_until_caught_up()
                live = await dump(engine)
                for name in engine.names:
                    await engine.rebuild(name)
                rebuilt = await dump(engine)
                assert rebuilt == live
                assert all(s.parked == 0 for s in await engine.status())
            finally:
                await engine.close()

    # No shrinking: the store keeps growing across examples, so a shrunk example would not be
    # smaller; the failing example is reported as generated.
    @settings(
        max_examples=12,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
        database=None,
    )
    @given(
        st.lists(st.tuples(st.lists(op, max_size=12), st.integers(1, 9)), min_size=1, max_size=5)
    )
    def check(chunks: list[tuple[list[Any], int]]) -> None:
        asyncio.run(scenario(chunks))

    check()
