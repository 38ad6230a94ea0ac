"""Product / inventory: one stream per SKU (``inventory-<sku>``).

``on_hand`` rises with StockReplenished and falls with StockCommitted; ``reserved`` rises with
InventoryReserved and falls with InventoryReleased or StockCommitted; ``available = on_hand -
reserved`` never goes below zero. One reservation per (sku, order): reserving again for the same
order is a no-op, releasing or committing a settled reservation too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import assert_never

from cairn.decider import FunctionDecider
from cairn.errors import DomainError, NotFoundError
from cairn.orders.domain.common import check_id, check_quantity, check_sku, check_text
from cairn.orders.domain.money import Money

# --- commands --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RegisterProduct:
    sku: str
    name: str
    unit_price: Money
    initial_stock: int = 0


@dataclass(frozen=True, slots=True)
class ReplenishStock:
    sku: str
    quantity: int


@dataclass(frozen=True, slots=True)
class ReserveStock:
    sku: str
    order_id: str
    quantity: int


@dataclass(frozen=True, slots=True)
class ReleaseStock:
    sku: str
    order_id: str


@dataclass(frozen=True, slots=True)
class CommitStock:
    sku: str
    order_id: str


InventoryCommand = RegisterProduct | ReplenishStock | ReserveStock | ReleaseStock | CommitStock

# --- events ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProductRegistered:
    sku: str
    name: str
    unit_price: Decimal
    currency: str


@dataclass(frozen=True, slots=True)
class StockReplenished:
    sku: str
    quantity: int


@dataclass(frozen=True, slots=True)
class InventoryReserved:
    sku: str
    order_id: str
    quantity: int


@dataclass(frozen=True, slots=True)
class InventoryReservationFailed:
    sku: str
    order_id: str
    requested: int
    available: int
    reason: str


@dataclass(frozen=True, slots=True)
class InventoryReleased:
    sku: str
    order_id: str
    quantity: int


@dataclass(frozen=True, slots=True)
class StockCommitted:
    sku: str
    order_id: str
    quantity: int


InventoryEvent = (
    ProductRegistered
    | StockReplenished
    | InventoryReserved
    | InventoryReservationFailed
    | InventoryReleased
    | StockCommitted
)

# --- state -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UnknownProduct:
    """No ProductRegistered yet."""


@dataclass(frozen=True, slots=True)
class Product:
    sku: str
    name: str
    unit_price: Money
    on_hand: int = 0
    reserved: int = 0
    #: Open reservations: order id → quantity held.
    reservations: Mapping[str, int] = field(default_factory=dict)
    #: Orders whose reservation was released or committed: never reserved again.
    settled: frozenset[str] = frozenset()

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


InventoryState = UnknownProduct | Product

# --- decide ----------------------------------------------------------------------------------


def initial_state() -> InventoryState:
    return UnknownProduct()


def validate(command: InventoryCommand) -> None:
    """The rules that need no state: checked before loading, and again by ``decide``."""
    check_sku(command.sku)
    match command:
        case RegisterProduct(name=name, unit_price=price, initial_stock=stock):
            check_text(name, "name", limit=200)
            if not isinstance(price, Money) or price.is_negative:
                raise DomainError("price.invalid", "unit price must be a non-negative amount")
            check_quantity(stock, allow_zero=True)
        case ReplenishStock(quantity=quantity):
            check_quantity(quantity)
        case ReserveStock(order_id=order_id, quantity=quantity):
            check_id(order_id, "order_id")
            check_quantity(quantity)
        case ReleaseStock(order_id=order_id) | CommitStock(order_id=order_id):
            check_id(order_id, "order_id")
        case _:
            assert_never(command)


def decide(command: InventoryCommand, state: InventoryState) -> list[InventoryEvent]:
    validate(command)
    match command, state:
        case RegisterProduct(), UnknownProduct():
            registered: list[InventoryEvent] = [
                ProductRegistered(
                    sku=command.sku,
                    name=command.name,
                    unit_price=command.unit_price.amount,
                    currency=command.unit_price.currency,
                )
            ]
            if command.initial_stock:
                registered.append(StockReplenished(command.sku, command.initial_stock))
            return registered
        case RegisterProduct(), Product():
            raise DomainError(
                "product.already_registered", f"product {command.sku!r} is already registered"
            )
        case _, UnknownProduct():
            raise NotFoundError("product.not_found", f"product {command.sku!r} does not exist")
        case ReplenishStock(), Product():
            if state.on_hand + command.quantity > 2**53:
                raise DomainError("quantity.invalid", "stock level would overflow")
            return [StockReplenished(command.sku, command.quantity)]
        case ReserveStock(), Product():
            if command.order_id in state.reservations or command.order_id in state.settled:
                return []  # one reservation per (sku, order): a repeat is a no-op
            if command.quantity > state.available:
                return [
                    InventoryReservationFailed(
                        sku=command.sku,
                        order_id=command.order_id,
                        requested=command.quantity,
                        available=state.available,
                        reason="insufficient_stock",
                    )
                ]
            return [InventoryReserved(command.sku, command.order_id, command.quantity)]
        case ReleaseStock(), Product():
            held = state.reservations.get(command.order_id)
            if held is None:
                return []  # nothing held (never reserved, or already settled): harmless
            return [InventoryReleased(command.sku, command.order_id, held)]
        case CommitStock(), Product():
            held = state.reservations.get(command.order_id)
            if held is not None:
                return [StockCommitted(command.sku, command.order_id, held)]
            if command.order_id in state.settled:
                return []
            raise DomainError(
                "inventory.not_reserved",
                f"no stock of {command.sku!r} is reserved for order {command.order_id}",
            )
    raise DomainError(
        "inventory.invalid_transition",
        f"{type(command).__name__} is not allowed for {type(state).__name__}",
    )


# --- evolve ----------------------------------------------------------------------------------


def evolve(state: InventoryState, event: InventoryEvent) -> InventoryState:
    if isinstance(event, ProductRegistered):
        return Product(event.sku, event.name, Money(event.unit_price, event.currency))
    if isinstance(state, UnknownProduct):
        return state  # no stock history precedes registration; evolve never refuses an event
    match event:
        case StockReplenished():
            return replace(state, on_hand=state.on_hand + event.quantity)
        case InventoryReserved():
            return replace(
                state,
                reserved=state.reserved + event.quantity,
                reservations={**state.reservations, event.order_id: event.quantity},
            )
        case InventoryReservationFailed():
            return state
        case InventoryReleased():
            return _settle(state, event.order_id, event.quantity, on_hand=state.on_hand)
        case StockCommitted():
            return _settle(
                state, event.order_id, event.quantity, on_hand=state.on_hand - event.quantity
            )
        case _:
            assert_never(event)


def _settle(state: Product, order_id: str, quantity: int, *, on_hand: int) -> Product:
    return replace(
        state,
        on_hand=on_hand,
        reserved=state.reserved - quantity,
        reservations={k: v for k, v in state.reservations.items() if k != order_id},
        settled=state.settled | {order_id},
    )


decider: FunctionDecider[InventoryCommand, InventoryState, InventoryEvent] = FunctionDecider(
    decide, evolve, initial_state
)


def stream_id(sku: str) -> str:
    return f"inventory-{sku}"
