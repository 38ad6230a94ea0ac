"""Order: one stream per order (``order-<order_id>``).

Status moves ``draft → placed → confirmed → shipped → delivered``, and to ``cancelled`` from
draft, placed or confirmed (never after shipping). Items change only in draft; an order with no
items cannot be placed. Unit prices come from the product catalogue when an item is added: the
handler looks the products up and hands them over on the command (``products``), as it hands
over the order number, so that ``decide`` stays pure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import ClassVar, Final, assert_never

from cairn.decider import FunctionDecider
from cairn.errors import DomainError, NotFoundError
from cairn.orders.domain.common import MAX_QUANTITY, check_id, check_quantity, check_sku, check_text
from cairn.orders.domain.contact import ShippingAddress as ShippingAddress
from cairn.orders.domain.contact import check_address, check_email
from cairn.orders.domain.money import Money, check_currency

#: Distinct lines one order may hold.
MAX_LINES: Final = 100

_ORDER_NUMBER = re.compile(r"ORD-\d{4}-\d{6,}")


def format_order_number(year: int, sequence: int) -> str:
    """``ORD-2026-000123``: the year and a per-year sequence, zero-padded to six digits."""
    return f"ORD-{year:04d}-{sequence:06d}"


# --- values ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderItem:
    """A line requested on CreateOrder."""

    sku: str
    quantity: int


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    """What the product catalogue says about a SKU when an item is added."""

    sku: str
    name: str
    unit_price: Money


@dataclass(frozen=True, slots=True)
class PlacedItem:
    sku: str
    quantity: int
    unit_price: Decimal


# --- commands --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreateOrder:
    order_id: str
    customer_id: str
    customer_name: str
    customer_email: str
    currency: str
    shipping_address: ShippingAddress
    items: tuple[OrderItem, ...] = ()
    #: Calendar year of the order number; the handler fills in the current one when ``None``.
    year: int | None = None
    #: Filled in by the handler (allocated from the per-year counter stream).
    order_number: str = ""
    #: Filled in by the handler: the catalogue entry of every SKU in ``items`` that exists.
    products: Mapping[str, CatalogueEntry] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AddItem:
    order_id: str
    sku: str
    quantity: int
    #: Filled in by the handler: the catalogue entry of ``sku``, ``None`` if it does not exist.
    product: CatalogueEntry | None = None


@dataclass(frozen=True, slots=True)
class RemoveItem:
    order_id: str
    sku: str


@dataclass(frozen=True, slots=True)
class PlaceOrder:
    order_id: str
    payment_method: str


@dataclass(frozen=True, slots=True)
class ConfirmOrder:
    order_id: str
    payment_id: str
    shipment_id: str


@dataclass(frozen=True, slots=True)
class ShipOrder:
    order_id: str


@dataclass(frozen=True, slots=True)
class DeliverOrder:
    order_id: str


@dataclass(frozen=True, slots=True)
class CancelOrder:
    order_id: str
    reason: str = ""


OrderCommand = (
    CreateOrder
    | AddItem
    | RemoveItem
    | PlaceOrder
    | ConfirmOrder
    | ShipOrder
    | DeliverOrder
    | CancelOrder
)

# --- events ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderCreated:
    order_id: str
    order_number: str
    customer_id: str
    customer_name: str
    customer_email: str
    currency: str
    shipping_address: ShippingAddress


@dataclass(frozen=True, slots=True)
class ItemAdded:
    order_id: str
    sku: str
    name: str
    quantity: int
    unit_price: Decimal
    currency: str


@dataclass(frozen=True, slots=True)
class ItemRemoved:
    order_id: str
    sku: str


@dataclass(frozen=True, slots=True)
class OrderPlaced:
    order_id: str
    payment_method: str
    total: Decimal
    currency: str
    items: tuple[PlacedItem, ...]


@dataclass(frozen=True, slots=True)
class OrderConfirmed:
    order_id: str
    payment_id: str
    shipment_id: str


@dataclass(frozen=True, slots=True)
class OrderShipped:
    order_id: str
    shipment_id: str


@dataclass(frozen=True, slots=True)
class OrderDelivered:
    order_id: str


@dataclass(frozen=True, slots=True)
class OrderCancelled:
    order_id: str
    reason: str
    previous_status: str


OrderEvent = (
    OrderCreated
    | ItemAdded
    | ItemRemoved
    | OrderPlaced
    | OrderConfirmed
    | OrderShipped
    | OrderDelivered
    | OrderCancelled
)

# --- state -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderLine:
    sku: str
    name: str
    quantity: int
    unit_price: Money

    @property
    def line_total(self) -> Money:
        return self.unit_price * self.quantity


@dataclass(frozen=True, slots=True)
class OrderDetails:
    """What every lifecycle state of an existing order knows."""

    order_id: str
    order_number: str
    customer_id: str
    customer_name: str
    customer_email: str
    currency: str
    shipping_address: ShippingAddress
    lines: tuple[OrderLine, ...] = ()

    @property
    def total(self) -> Money:
        total = Money.zero(self.currency)
        for line in self.lines:
            total = total + line.line_total
        return total

    def line(self, sku: str) -> OrderLine | None:
        return next((line for line in self.lines if line.sku == sku), None)


@dataclass(frozen=True, slots=True)
class NoOrder:
    status: ClassVar[str] = "none"


@dataclass(frozen=True, slots=True)
class DraftOrder:
    status: ClassVar[str] = "draft"
    order: OrderDetails


@dataclass(frozen=True, slots=True)
class PlacedOrder:
    status: ClassVar[str] = "placed"
    order: OrderDetails
    payment_method: str


@dataclass(frozen=True, slots=True)
class ConfirmedOrder:
    status: ClassVar[str] = "confirmed"
    order: OrderDetails
    payment_method: str
    payment_id: str
    shipment_id: str


@dataclass(frozen=True, slots=True)
class ShippedOrder:
    status: ClassVar[str] = "shipped"
    order: OrderDetails
    payment_method: str
    payment_id: str
    shipment_id: str


@dataclass(frozen=True, slots=True)
class DeliveredOrder:
    status: ClassVar[str] = "delivered"
    order: OrderDetails
    payment_method: str
    payment_id: str
    shipment_id: str


@dataclass(frozen=True, slots=True)
class CancelledOrder:
    status: ClassVar[str] = "cancelled"
    order: OrderDetails
    reason: str
    previous_status: str


OrderState = (
    NoOrder
    | DraftOrder
    | PlacedOrder
    | ConfirmedOrder
    | ShippedOrder
    | DeliveredOrder
    | CancelledOrder
)
ExistingOrder = (
    DraftOrder | PlacedOrder | ConfirmedOrder | ShippedOrder | DeliveredOrder | CancelledOrder
)

#: SPEC §3's status graph: every status an order may move to from each status.
TRANSITIONS: Final[Mapping[str, frozenset[str]]] = {
    "none": frozenset({"draft"}),
    "draft": frozenset({"placed", "cancelled"}),
    "placed": frozenset({"confirmed", "cancelled"}),
    "confirmed": frozenset({"shipped", "cancelled"}),
    "shipped": frozenset({"delivered"}),
    "delivered": frozenset(),
    "cancelled": frozenset(),
}

# --- decide ----------------------------------------------------------------------------------


def initial_state() -> OrderState:
    return NoOrder()


def validate(command: OrderCommand) -> None:
    """The rules that need no state: checked before loading, and again by ``decide``."""
    check_id(command.order_id, "order_id")
    match command:
        case CreateOrder():
            check_id(command.customer_id, "customer_id")
            check_text(command.customer_name, "customer_name", limit=200)
            check_email(command.customer_email)
            check_currency(command.currency)
            check_address(command.shipping_address)
            if not isinstance(command.items, tuple) or len(command.items) > MAX_LINES:
                raise DomainError("order.too_many_items", f"at most {MAX_LINES} items per order")
            for item in command.items:
                if not isinstance(item, OrderItem):
                    raise DomainError("items.invalid", "items must be (sku, quantity) pairs")
                check_sku(item.sku)
                check_quantity(item.quantity)
            if command.year is not None and (
                isinstance(command.year, bool)
                or not isinstance(command.year, int)
                or not 2000 <= command.year <= 9999
            ):
                raise DomainError("year.invalid", f"year {command.year!r} is out of range")
        case AddItem():
            check_sku(command.sku)
            check_quantity(command.quantity)
        case RemoveItem():
            check_sku(command.sku)
        case PlaceOrder():
            check_text(command.payment_method, "payment_method", limit=100)
        case ConfirmOrder():
            check_id(command.payment_id, "payment_id")
            check_id(command.shipment_id, "shipment_id")
        case ShipOrder() | DeliverOrder():
            pass
        case CancelOrder():
            check_text(command.reason, "reason", required=False)
        case _:
            assert_never(command)


def decide(command: OrderCommand, state: OrderState) -> list[OrderEvent]:
    validate(command)
    match command, state:
        case CreateOrder(), NoOrder():
            return _create(command)
        case CreateOrder(), _:
            raise DomainError("order.already_exists", f"order {command.order_id} already exists")
        case _, NoOrder():
            raise NotFoundError("order.not_found", f"order {command.order_id} does not exist")
        case AddItem(), DraftOrder():
            return [_add_item(state.order, command.sku, command.quantity, command.product)]
        case RemoveItem(), DraftOrder():
            if state.order.line(command.sku) is None:
                raise DomainError(
                    "order.item_not_found",
                    f"SKU {command.sku!r} is not on order {command.order_id}",
                    sku=command.sku,
                )
            return [ItemRemoved(command.order_id, command.sku)]
        case AddItem() | RemoveItem(), _:
            raise DomainError(
                "order.not_draft",
                f"items change only in draft; order {command.order_id} is {state.status}",
                status=state.status,
            )
        case PlaceOrder(), DraftOrder():
            if not state.order.lines:
                raise DomainError("order.empty", "an order with no items cannot be placed")
            return [
                OrderPlaced(
                    order_id=command.order_id,
                    payment_method=command.payment_method,
                    total=state.order.total.amount,
                    currency=state.order.currency,
                    items=tuple(
                        PlacedItem(line.sku, line.quantity, line.unit_price.amount)
                        for line in state.order.lines
                    ),
                )
            ]
        case PlaceOrder(), _:
            raise DomainError(
                "order.not_draft",
                f"only a draft order can be placed; order {command.order_id} is {state.status}",
                status=state.status,
            )
        case ConfirmOrder(), PlacedOrder():
            return [OrderConfirmed(command.order_id, command.payment_id, command.shipment_id)]
        case ShipOrder(), ConfirmedOrder():
            return [OrderShipped(command.order_id, state.shipment_id)]
        case ShipOrder(), ShippedOrder() | DeliveredOrder():
            raise DomainError(
                "order.already_shipped", f"order {command.order_id} has already shipped"
            )
        case DeliverOrder(), ShippedOrder():
            return [OrderDelivered(command.order_id)]
        case DeliverOrder(), DeliveredOrder():
            raise DomainError(
                "order.already_delivered", f"order {command.order_id} is already delivered"
            )
        case CancelOrder(), DraftOrder() | PlacedOrder() | ConfirmedOrder():
            return [OrderCancelled(command.order_id, command.reason, state.status)]
        case CancelOrder(), ShippedOrder() | DeliveredOrder():
            raise DomainError(
                "order.already_shipped",
                f"order {command.order_id} has shipped and can no longer be cancelled",
            )
        case CancelOrder(), CancelledOrder():
            raise DomainError(
                "order.already_cancelled", f"order {command.order_id} is already cancelled"
            )
    raise DomainError(
        "order.invalid_transition",
        f"{type(command).__name__} is not allowed for an order that is {state.status}",
        status=state.status,
    )


def _create(command: CreateOrder) -> list[OrderEvent]:
    if _ORDER_NUMBER.fullmatch(command.order_number) is None:
        raise DomainError(
            "order.number_missing", "the order number is allocated before the order is created"
        )
    details = OrderDetails(
        order_id=command.order_id,
        order_number=command.order_number,
        customer_id=command.customer_id,
        customer_name=command.customer_name,
        customer_email=command.customer_email,
        currency=command.currency,
        shipping_address=command.shipping_address,
    )
    events: list[OrderEvent] = [
        OrderCreated(
            order_id=details.order_id,
            order_number=details.order_number,
            customer_id=details.customer_id,
            customer_name=details.customer_name,
            customer_email=details.customer_email,
            currency=details.currency,
            shipping_address=details.shipping_address,
        )
    ]
    for item in command.items:
        added = _add_item(details, item.sku, item.quantity, command.products.get(item.sku))
        details = _with_item(details, added)
        events.append(added)
    return events


def _add_item(
    order: OrderDetails, sku: str, quantity: int, product: CatalogueEntry | None
) -> ItemAdded:
    if product is None or product.sku != sku:
        raise DomainError("product.not_found", f"product {sku!r} does not exist", sku=sku)
    if product.unit_price.currency != order.currency:
        raise DomainError(
            "order.currency_mismatch",
            f"{sku!r} is priced in {product.unit_price.currency}, the order in {order.currency}",
            sku=sku,
        )
    line = order.line(sku)
    if line is None and len(order.lines) >= MAX_LINES:
        raise DomainError("order.too_many_items", f"at most {MAX_LINES} lines per order")
    if line is not None and line.quantity + quantity > MAX_QUANTITY:
        raise DomainError(
            "quantity.invalid",
            f"line {sku!r} would hold more than {MAX_QUANTITY} units",
            sku=sku,
        )
    # A SKU already on the order keeps the price it was first added at, so every ItemAdded of
    # one line carries one unit price and the line total is quantity x unit price.
    price = product.unit_price if line is None else line.unit_price
    return ItemAdded(
        order_id=order.order_id,
        sku=sku,
        name=product.name if line is None else line.name,
        quantity=quantity,
        unit_price=price.amount,
        currency=price.currency,
    )


# --- evolve ----------------------------------------------------------------------------------


def _with_item(order: OrderDetails, event: ItemAdded) -> OrderDetails:
    line = order.line(event.sku)
    if line is None:
        new = OrderLine(
            event.sku, event.name, event.quantity, Money(event.unit_price, event.currency)
        )
        return _with_lines(order, (*order.lines, new))
    grown = OrderLine(line.sku, line.name, line.quantity + event.quantity, line.unit_price)
    return _with_lines(order, tuple(grown if x.sku == event.sku else x for x in order.lines))


def _with_lines(order: OrderDetails, lines: tuple[OrderLine, ...]) -> OrderDetails:
    return replace(order, lines=lines)


def evolve(state: OrderState, event: OrderEvent) -> OrderState:
    match event:
        case OrderCreated():
            return DraftOrder(
                OrderDetails(
                    order_id=event.order_id,
                    order_number=event.order_number,
                    customer_id=event.customer_id,
                    customer_name=event.customer_name,
                    customer_email=event.customer_email,
                    currency=event.currency,
                    shipping_address=event.shipping_address,
                )
            )
        case ItemAdded():
            if isinstance(state, DraftOrder):
                return DraftOrder(_with_item(state.order, event))
            return state
        case ItemRemoved():
            if isinstance(state, DraftOrder):
                lines = tuple(x for x in state.order.lines if x.sku != event.sku)
                return DraftOrder(_with_lines(state.order, lines))
            return state
        case OrderPlaced():
            if isinstance(state, DraftOrder):
                return PlacedOrder(state.order, event.payment_method)
            return state
        case OrderConfirmed():
            if isinstance(state, PlacedOrder):
                return ConfirmedOrder(
                    state.order, state.payment_method, event.payment_id, event.shipment_id
                )
            return state
        case OrderShipped():
            if isinstance(state, ConfirmedOrder):
                return ShippedOrder(
                    state.order, state.payment_method, state.payment_id, state.shipment_id
                )
            return state
        case OrderDelivered():
            if isinstance(state, ShippedOrder):
                return DeliveredOrder(
                    state.order, state.payment_method, state.payment_id, state.shipment_id
                )
            return state
        case OrderCancelled():
            if isinstance(state, DraftOrder | PlacedOrder | ConfirmedOrder):
                return CancelledOrder(state.order, event.reason, event.previous_status)
            return state
        case _:
            assert_never(event)


decider: FunctionDecider[OrderCommand, OrderState, OrderEvent] = FunctionDecider(
    decide, evolve, initial_state
)


def stream_id(order_id: str) -> str:
    return f"order-{order_id}"
