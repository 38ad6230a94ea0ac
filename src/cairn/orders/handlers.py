"""The order application's command routing: which aggregate and stream each command targets,
and what a handler looks up for the decider (catalogue prices, an order number)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from cairn.application.bus import CommandBus
from cairn.application.handlers import Route, Services
from cairn.application.messages import Envelope, event_id_for
from cairn.application.middleware import Middleware
from cairn.orders.domain import inventory, orders, payments, shipping
from cairn.orders.domain.ids import payment_id_for, shipment_id_for
from cairn.orders.order_numbers import order_numbers_of
from cairn.orders.repositories import OrderRepositories
from cairn.store.base import EventStore

# --- lookups ---------------------------------------------------------------------------------


async def catalogue_entry(services: Services, sku: str) -> orders.CatalogueEntry | None:
    """What the product catalogue says about ``sku`` (``None`` if it is not registered)."""
    repository = services.repositories.for_category("inventory")
    stream = inventory.stream_id(sku)
    # A product's name and price are fixed by ProductRegistered (no command changes them), so
    # any cached state of a registered product answers without a round trip; stock levels,
    # which do change, are not read from here.
    cached = repository.peek(stream)
    state = cached.state if cached is not None else None
    if not isinstance(state, inventory.Product):
        state = (await repository.load(stream)).state
    if isinstance(state, inventory.Product):
        return orders.CatalogueEntry(state.sku, state.name, state.unit_price)
    return None


async def allocate_order_number(
    services: Services, envelope: Envelope, order_id: str, year: int
) -> str:
    """The next number of ``year`` (:mod:`cairn.orders.order_numbers`). A re-delivered (or
    retried) CreateOrder whose number was allocated for it alone gets that number back (the
    event id derives from the command id) instead of burning another."""
    command_id = envelope.context.command_id or order_id
    number = await order_numbers_of(services.store).next(
        year,
        order_id,
        event_id_for(command_id, "order-number"),
        envelope.context.event_metadata(envelope.command_type),
    )
    return orders.format_order_number(year, number)


_PLACEHOLDER_NUMBER = "ORD-0000-000000"


async def prepare_create_order(
    command: orders.CreateOrder, state: orders.OrderState, services: Services, envelope: Envelope
) -> orders.CreateOrder:
    products: dict[str, orders.CatalogueEntry] = {}
    for item in command.items:
        if item.sku not in products:
            entry = await catalogue_entry(services, item.sku)
            if entry is not None:
                products[item.sku] = entry
    command = replace(command, products=products)
    if not isinstance(state, orders.NoOrder):
        return command  # the decider refuses it (order.already_exists): allocate nothing
    # Dry run with a placeholder number, so a command the decider refuses (unknown SKU,
    # currency mismatch…) never burns an order number.
    orders.decide(replace(command, order_number=_PLACEHOLDER_NUMBER), state)
    year = command.year if command.year is not None else services.clock().year
    number = await allocate_order_number(services, envelope, command.order_id, year)
    return replace(command, order_number=number)


async def prepare_add_item(
    command: orders.AddItem, state: orders.OrderState, services: Services, envelope: Envelope
) -> orders.AddItem:
    return replace(command, product=await catalogue_entry(services, command.sku))


# --- the routing table -----------------------------------------------------------------------


def _sku_stream(command: Any) -> str:
    return inventory.stream_id(str(command.sku))


def _order_stream(command: Any) -> str:
    return orders.stream_id(str(command.order_id))


def _payment_stream(command: Any) -> str:
    return payments.stream_id(payment_id_for(str(command.order_id)))


def _shipment_stream(command: Any) -> str:
    return shipping.stream_id(shipment_id_for(str(command.order_id)))


def order_routes() -> dict[type, Route]:
    """A route for every command of the order domain."""
    inv = Route("inventory", _sku_stream, inventory.validate)
    order = Route("order", _order_stream, orders.validate)
    pay = Route("payment", _payment_stream, payments.validate)
    ship = Route("shipment", _shipment_stream, shipping.validate)
    table: Mapping[type, Route] = {
        inventory.RegisterProduct: inv,
        inventory.ReplenishStock: inv,
        inventory.ReserveStock: inv,
        inventory.ReleaseStock: inv,
        inventory.CommitStock: inv,
        orders.CreateOrder: replace(order, prepare=prepare_create_order),
        orders.AddItem: replace(order, prepare=prepare_add_item),
        orders.RemoveItem: order,
        orders.PlaceOrder: order,
        orders.ConfirmOrder: order,
        orders.ShipOrder: order,
        orders.DeliverOrder: order,
        orders.CancelOrder: order,
        payments.AuthorizePayment: pay,
        payments.CapturePayment: pay,
        payments.VoidPayment: pay,
        payments.RefundPayment: pay,
        shipping.CreateShipment: ship,
        shipping.CancelShipment: ship,
        shipping.MarkDelivered: ship,
    }
    return dict(table)


def order_command_bus(
    store: EventStore,
    *,
    repositories: OrderRepositories | None = None,
    middleware: Sequence[Middleware] | None = None,
    clock: Callable[[], datetime] | None = None,
) -> CommandBus:
    """A command bus for every order-domain command on ``store`` (the composition root builds
    the same with its settings' snapshot policy)."""
    return CommandBus(
        store,
        routes=order_routes(),
        repositories=repositories or OrderRepositories.build(store),
        middleware=middleware,
        clock=clock,
    )
