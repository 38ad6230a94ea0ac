"""Forgetting a customer (cairn.orders.forgetting): their orders come from the log, every one
is named in ``CustomerForgotten``, their snapshots go, and Redis being down does not stop it."""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from cairn.orders.bootstrap import Container, bootstrap
from cairn.orders.components import build_projections
from cairn.orders.domain.inventory import RegisterProduct
from cairn.orders.domain.money import Money
from cairn.orders.domain.orders import CreateOrder, OrderItem, ShippingAddress
from cairn.orders.forgetting import forget_customer
from cairn.settings import Settings
from cairn.store.base import Snapshot


@pytest.fixture
async def container() -> AsyncIterator[Container]:
    c = await bootstrap(Settings(database_url="memory://"))
    await c.command_bus.dispatch(RegisterProduct("MUG", "Mug", Money.of("12.50", "EUR"), 10))
    try:
        yield c
    finally:
        await c.close()


async def _order(container: Container, customer: str) -> str:
    order_id = str(uuid.uuid4())
    await container.command_bus.dispatch(
        CreateOrder(
            order_id=order_id,
            customer_id=customer,
            customer_name="Ada",
            customer_email="ada@example.com",
            currency="EUR",
            shipping_address=ShippingAddress("1 Main St", "Paris", "75001", "FR"),
            items=(OrderItem("MUG", 1),),
        )
    )
    return order_id


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_every_order_of_the_customer_in_the_log_is_named_and_loses_its_snapshot(
    container: Container,
) -> None:
    mine = [await _order(container, "c-1"), await _order(container, "c-1")]
    other = await _order(container, "c-2")
    for order_id in (*mine, other):
        snapshot = Snapshot(f"order-{order_id}", 1, {"name": "Ada"}, "s", datetime.now(UTC))
        await container.store.save_snapshot(snapshot)
    done = await forget_customer(container.store, container.repositories, "c-1")
    assert done.order_ids == tuple(mine)
    (event,) = await container.store.read_stream("customer-c-1")
    assert (event.type, event.data["order_ids"]) == ("CustomerForgotten", mine)
    assert [await container.store.load_snapshot(f"order-{o}") for o in mine] == [None, None]
    assert await container.store.load_snapshot(f"order-{other}") is not None


async def test_a_forget_with_redis_down_still_tells_the_read_models(container: Container) -> None:
    order_id = await _order(container, "c-1")
    read_side = build_projections(
        "memory://", container.store, redis_url=f"redis://127.0.0.1:{_closed_port()}/0"
    )
    try:
        await read_side.migrate()
        done = await forget_customer(
            container.store, container.repositories, "c-1", read_side=read_side
        )
    finally:
        await read_side.close()
    assert done.order_ids == (order_id,)
    (event,) = await container.store.read_stream("customer-c-1")
    assert event.type == "CustomerForgotten"
