"""One route per command: which aggregate and stream it targets, and what the handler must look
up for the decider. Every handler is the same three steps: load → decide → append with the
loaded version as ``expected_version``. Handlers never decide; they fetch facts the decider
needs (catalogue prices, an order number) and hand them over on the command.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from cairn.application.messages import CommandResult, Envelope, event_id_for
from cairn.application.repository import Loaded, Repositories, Repository
from cairn.application.stream_locks import StreamLocks
from cairn.domain import inventory, orders, payments, shipping
from cairn.domain.ids import payment_id_for, shipment_id_for
from cairn.errors import ConcurrencyError, DomainError
from cairn.store.base import ANY, EventStore, NewEvent


@dataclass(frozen=True, slots=True)
class Services:
    """What handlers may use besides the target aggregate's repository."""

    store: EventStore
    repositories: Repositories
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    locks: StreamLocks = field(default_factory=StreamLocks)


Prepare = Callable[[Any, Any, Services, Envelope], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Route:
    """How the bus reaches the aggregate a command targets."""

    repository: Callable[[Repositories], Repository[Any, Any, Any]]
    stream_id: Callable[[Any], str]
    #: Stateless domain rules, checked by the validation middleware before anything is loaded.
    validate: Callable[[Any], None]
    #: Looks up what the decider needs (given the loaded state) and returns the full command.
    prepare: Prepare | None = None


class _Unproven(Exception):
    """An outcome a cached, unverified state cannot prove (a refusal or a no-op)."""


async def handle(envelope: Envelope, services: Services) -> CommandResult:
    """Load → decide → append(expected_version). The terminal step of the bus pipeline.

    Fast path: when the repository holds a cached state of the stream, or the caller has just
    minted the stream's id (``context.new_stream``: its state is the initial one), decide on
    it without asking the store first. Only an append can prove a decision, and the append's
    expected version does: if another writer got there first, nothing is written and the
    command runs again on the caught-up state. A refusal or a no-op decided on the cached
    state is not trusted either: the command runs again on the verified state before answering.

    Commands on one stream take turns inside this process (``services.locks``), so the next
    one decides on the state the previous one saved instead of losing the race to it.
    """
    async with services.locks.hold(envelope.stream_id):
        return await _handle(envelope, services)


async def _handle(envelope: Envelope, services: Services) -> CommandResult:
    repository = envelope.route.repository(services.repositories)
    cached = repository.peek(envelope.stream_id)
    if cached is None and envelope.context.new_stream:
        initial = repository.aggregate.decider.initial_state()
        cached = Loaded(envelope.stream_id, initial, 0, 0)
    if cached is not None and (cached.version > 0 or envelope.context.new_stream):
        try:
            return await _run(envelope, services, repository, cached, trusted=True)
        except _Unproven:
            pass
        except ConcurrencyError:
            if envelope.context.expected_version is not None:
                raise  # the caller's own precondition failed: that is the answer
    loaded = await repository.load(envelope.stream_id)
    return await _run(envelope, services, repository, loaded, trusted=False)


async def _run(
    envelope: Envelope,
    services: Services,
    repository: Repository[Any, Any, Any],
    loaded: Loaded[Any],
    *,
    trusted: bool,
) -> CommandResult:
    route, context = envelope.route, envelope.context
    if envelope.replay is not None:
        replayed = await envelope.replay
        if replayed is not None:
            return replayed
    if context.expected_version is not None and loaded.version != context.expected_version:
        if trusted:
            raise _Unproven
        raise ConcurrencyError(envelope.stream_id, context.expected_version, loaded.version)
    command = envelope.command
    if route.prepare is not None:
        command = await route.prepare(command, loaded.state, services, envelope)
    try:
        events = repository.aggregate.decider.decide(command, loaded.state)
    except DomainError:
        if trusted:
            raise _Unproven from None
        raise
    if not events:
        if trusted:
            raise _Unproven
        return CommandResult(
            envelope.stream_id, loaded.version, loaded.position, [], context.command_id
        )
    saved = await repository.save(
        loaded,
        events,
        event_ids=context.event_ids(len(events)),
        metadata=context.event_metadata(envelope.command_type),
    )
    result = saved.result
    # The append answers the events as recorded (the original ones on an idempotent retry).
    return CommandResult(
        envelope.stream_id, result.version, result.position, list(result.events), context.command_id
    )


# --- lookups ---------------------------------------------------------------------------------


async def catalogue_entry(services: Services, sku: str) -> orders.CatalogueEntry | None:
    """What the product catalogue says about ``sku`` (``None`` if it is not registered)."""
    repository = services.repositories.inventory
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
    """The next number of ``year``, unique across processes without a retry loop: append one
    event to the year's counter stream with expected_version=ANY; the stream version the store
    gives it IS the number. The event id derives from the command id, so a re-delivered (or
    retried) CreateOrder gets its first number back instead of burning another."""
    command_id = envelope.context.command_id or order_id
    allocation = NewEvent(
        "OrderNumberAllocated",
        {"order_id": order_id, "year": year},
        metadata=envelope.context.event_metadata(envelope.command_type),
        id=event_id_for(command_id, "order-number"),
    )
    result = await services.store.append(f"ordernumbers-{year}", [allocation], ANY)
    return orders.format_order_number(year, result.version)


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


def _inventory(r: Repositories) -> Repository[Any, Any, Any]:
    return r.inventory


def _orders(r: Repositories) -> Repository[Any, Any, Any]:
    return r.orders


def _payments(r: Repositories) -> Repository[Any, Any, Any]:
    return r.payments


def _shipments(r: Repositories) -> Repository[Any, Any, Any]:
    return r.shipments


def _sku_stream(command: Any) -> str:
    return inventory.stream_id(str(command.sku))


def _order_stream(command: Any) -> str:
    return orders.stream_id(str(command.order_id))


def _payment_stream(command: Any) -> str:
    return payments.stream_id(payment_id_for(str(command.order_id)))


def _shipment_stream(command: Any) -> str:
    return shipping.stream_id(shipment_id_for(str(command.order_id)))


def default_routes() -> dict[type, Route]:
    """A route for every command of the order domain."""
    inv = Route(_inventory, _sku_stream, inventory.validate)
    order = Route(_orders, _order_stream, orders.validate)
    pay = Route(_payments, _payment_stream, payments.validate)
    ship = Route(_shipments, _shipment_stream, shipping.validate)
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
