"""The order application's aggregates and their repositories, by name."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from cairn.application.repository import AggregateType, Repositories, Repository, SnapshotPolicy
from cairn.orders.codec import ORDER_CODEC
from cairn.orders.domain import inventory, orders, payments, shipping
from cairn.store.base import EventStore

INVENTORY: Final[AggregateType[Any, Any, Any]] = AggregateType(
    "inventory", inventory.decider, inventory.InventoryState, ORDER_CODEC
)
ORDER: Final[AggregateType[Any, Any, Any]] = AggregateType(
    "order", orders.decider, orders.OrderState, ORDER_CODEC
)
PAYMENT: Final[AggregateType[Any, Any, Any]] = AggregateType(
    "payment", payments.decider, payments.PaymentState, ORDER_CODEC
)
SHIPMENT: Final[AggregateType[Any, Any, Any]] = AggregateType(
    "shipment", shipping.decider, shipping.ShipmentState, ORDER_CODEC
)
AGGREGATES: Final = (INVENTORY, ORDER, PAYMENT, SHIPMENT)


class OrderRepositories(Repositories):
    """One repository per aggregate type of the order domain, by name."""

    def __init__(
        self,
        inventory: Repository[Any, inventory.InventoryState, Any],
        orders: Repository[Any, orders.OrderState, Any],
        payments: Repository[Any, payments.PaymentState, Any],
        shipments: Repository[Any, shipping.ShipmentState, Any],
    ) -> None:
        super().__init__((inventory, orders, payments, shipments))
        self.inventory = inventory
        self.orders = orders
        self.payments = payments
        self.shipments = shipments

    @classmethod
    def build(
        cls,
        store: EventStore,
        *,
        snapshots: SnapshotPolicy | Mapping[str, SnapshotPolicy | None] | None = None,
        cache_size: int = 10_000,
    ) -> OrderRepositories:
        """Repositories on ``store``; ``snapshots`` is one policy for every type, or a policy
        per category (``{"order": EveryNEvents(50)}``)."""

        def repository(aggregate: AggregateType[Any, Any, Any]) -> Repository[Any, Any, Any]:
            policy = (
                snapshots.get(aggregate.category) if isinstance(snapshots, Mapping) else snapshots
            )
            return Repository(store, aggregate, snapshots=policy, cache_size=cache_size)

        return cls(
            repository(INVENTORY), repository(ORDER), repository(PAYMENT), repository(SHIPMENT)
        )
