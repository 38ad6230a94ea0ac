"""A running order system for saga tests: store, command bus, fakes and a saga runner on a real
database, with helpers that read the truth back from the event log."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from cairn.orders.adapters import FakeCarrier, FakePaymentGateway, Ledger
from cairn.orders.bootstrap import Container, bootstrap
from cairn.orders.components import build_saga_runner
from cairn.orders.domain.inventory import RegisterProduct
from cairn.orders.domain.money import Money
from cairn.orders.domain.orders import (
    CancelOrder,
    CreateOrder,
    OrderItem,
    PlaceOrder,
    ShipOrder,
    ShippingAddress,
)
from cairn.sagas import SagaRecord, SagaRunner, StepPolicy
from cairn.settings import Settings

FAST = StepPolicy(
    timeout=0.5, attempts=3, backoff=0.05, max_backoff=0.2, compensation_attempts=3, deadline=20
)

ORDER_STATUS = {
    "OrderCreated": "draft",
    "OrderPlaced": "placed",
    "OrderConfirmed": "confirmed",
    "OrderShipped": "shipped",
    "OrderDelivered": "delivered",
    "OrderCancelled": "cancelled",
}


def backend_url(request: Any, backend: str) -> str:
    return str(request.getfixturevalue("sqlite_url" if backend == "sqlite" else "pg_url"))


@dataclass
class World:
    container: Container
    runner: SagaRunner[Any]
    gateway: FakePaymentGateway
    carrier: FakeCarrier

    @property
    def store(self) -> Any:
        return self.container.store

    async def dispatch(self, command: object) -> Any:
        return await self.container.command_bus.dispatch(command)

    async def product(self, sku: str, stock: int, price: str = "10.00") -> None:
        await self.dispatch(
            RegisterProduct(sku, f"Product {sku}", Money(Decimal(price), "EUR"), stock)
        )

    async def order(self, items: dict[str, int], token: str = "tok_ok", country: str = "FR") -> str:
        order_id = str(uuid.uuid4())
        await self.dispatch(
            CreateOrder(
                order_id=order_id,
                customer_id="c-1",
                customer_name="Ada",
                customer_email="ada@example.com",
                currency="EUR",
                shipping_address=ShippingAddress("1 Main St", "Paris", "75001", country),
                items=tuple(OrderItem(sku, q) for sku, q in items.items()),
            )
        )
        await self.dispatch(PlaceOrder(order_id, token))
        return order_id

    async def cancel(self, order_id: str, reason: str = "changed my mind") -> None:
        await self.dispatch(CancelOrder(order_id, reason))

    async def ship(self, order_id: str) -> None:
        await self.dispatch(ShipOrder(order_id))

    async def saga(self, order_id: str) -> SagaRecord | None:
        return await self.runner.get_by_key(order_id)

    async def wait(
        self, order_id: str, *statuses: str, timeout: float = 15.0, step: str | None = None
    ) -> SagaRecord:
        deadline = time.monotonic() + timeout
        record = None
        while time.monotonic() < deadline:
            record = await self.saga(order_id)
            if (
                record is not None
                and record.status.value in statuses
                and (step is None or record.step == step)
            ):
                return record
            await asyncio.sleep(0.05)
        raise AssertionError(f"saga of {order_id} never reached {statuses}: {record}")

    async def order_status(self, order_id: str) -> str:
        return await order_status(self.store, order_id)

    async def stock(self, sku: str) -> tuple[int, int]:
        return await stock(self.store, sku)

    async def types(self, stream: str) -> list[str]:
        return [e.type for e in await self.store.read_stream(stream)]


async def order_status(store: Any, order_id: str) -> str:
    status = "none"
    for event in await store.read_stream(f"order-{order_id}"):
        status = ORDER_STATUS.get(event.type, status)
    return status


async def stock(store: Any, sku: str) -> tuple[int, int]:
    """(on_hand, reserved) folded from the inventory stream."""
    on_hand = reserved = 0
    for e in await store.read_stream(f"inventory-{sku}"):
        q = int(e.data.get("quantity", 0))
        if e.type == "StockReplenished":
            on_hand += q
        elif e.type == "InventoryReserved":
            reserved += q
        elif e.type == "InventoryReleased":
            reserved -= q
        elif e.type == "StockCommitted":
            on_hand -= q
            reserved -= q
    return on_hand, reserved


@contextlib.asynccontextmanager
async def running(
    url: str,
    *,
    policy: StepPolicy = FAST,
    gateway: FakePaymentGateway | None = None,
    carrier: FakeCarrier | None = None,
    partitions: int = 1,
    start: bool = True,
) -> AsyncIterator[World]:
    settings = Settings(database_url=url)
    gateway = gateway or FakePaymentGateway(ledger=Ledger())
    carrier = carrier or FakeCarrier(ledger=Ledger())
    container = await bootstrap(settings, gateway=gateway, carrier=carrier)
    runner = await build_saga_runner(
        settings,
        container.store,
        container.command_bus,
        gateway,
        carrier,
        partitions=partitions,
        policy=policy,
    )
    runner.poll_interval = 0.02
    task = asyncio.create_task(runner.run()) if start else None
    try:
        yield World(container, runner, gateway, carrier)
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await runner.close()
        await container.close()
