"""The command bus and its middleware, on the memory store."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

import pytest
from app_fixtures import memory_store, new_order, register_mug
from opentelemetry.sdk.trace import TracerProvider

from cairn.application import CommandBus, CommandContext, RetryPolicy, default_middleware
from cairn.application.handlers import Route, Services
from cairn.application.messages import Envelope
from cairn.errors import (
    ApplicationError,
    ConcurrencyError,
    DomainError,
    NotFoundError,
    PermissionDeniedError,
)
from cairn.orders.domain import inventory, orders
from cairn.orders.handlers import order_command_bus, order_routes
from cairn.orders.repositories import OrderRepositories
from cairn.store import NewEvent


async def bus_with(**kwargs: Any) -> CommandBus:
    store = await memory_store()
    return order_command_bus(store, middleware=default_middleware(store, **kwargs))


async def test_every_event_carries_correlation_causation_command_and_user() -> None:
    bus = await bus_with()
    context = CommandContext(
        command_id="cmd-1", user="ada", correlation_id="corr-1", metadata={"source": "test"}
    )
    result = await bus.dispatch(
        inventory.RegisterProduct("MUG-1", "Mug", _price("1.00"), 5), context
    )
    assert len(result.events) == 2
    for event in result.events:
        # (plus the command span's traceparent once a tracer provider is installed)
        metadata = {k: v for k, v in event.metadata.items() if k != "traceparent"}
        assert metadata == {
            "source": "test",
            "command_id": "cmd-1",
            "command_type": "RegisterProduct",
            "correlation_id": "corr-1",
            "causation_id": "cmd-1",
            "user": "ada",
        }


async def test_a_missing_command_id_is_made_up_and_used_as_correlation() -> None:
    bus = await bus_with()
    result = await bus.dispatch(inventory.RegisterProduct("MUG-1", "Mug", _price("1.00")))
    meta = result.events[0].metadata
    assert uuid.UUID(meta["command_id"])
    assert meta["correlation_id"] == meta["causation_id"] == meta["command_id"]


async def test_the_active_trace_context_travels_in_the_metadata() -> None:
    bus = await bus_with()
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("http") as span:
        result = await bus.dispatch(inventory.RegisterProduct("MUG-1", "Mug", _price("1.00")))
    trace_id = f"{span.get_span_context().trace_id:032x}"
    assert result.events[0].metadata["traceparent"].startswith(f"00-{trace_id}-")


async def test_redelivering_a_command_id_returns_the_first_result_and_writes_nothing() -> None:
    bus = await bus_with()
    await register_mug(bus)
    context = CommandContext(command_id=str(uuid.uuid4()))
    first = await bus.dispatch(inventory.ReplenishStock("MUG-1", 5), context)
    again = await bus.dispatch(inventory.ReplenishStock("MUG-1", 5), context)
    assert (again.version, again.position, again.replayed) == (first.version, first.position, True)
    assert [e.id for e in again.events] == [e.id for e in first.events]
    assert await bus.store.stream_version("inventory-MUG-1") == first.version


async def test_event_ids_derive_from_the_command_id() -> None:
    bus = await bus_with()
    from cairn.application import event_id_for

    result = await bus.dispatch(
        inventory.RegisterProduct("MUG-1", "Mug", _price("1.00"), 2),
        CommandContext(command_id="cmd-7"),
    )
    assert [e.id for e in result.events] == [event_id_for("cmd-7", 0), event_id_for("cmd-7", 1)]


async def test_a_command_id_reused_for_another_stream_is_refused() -> None:
    bus = await bus_with()
    await bus.dispatch(
        inventory.RegisterProduct("MUG-1", "Mug", _price("1.00")), CommandContext(command_id="x")
    )
    with pytest.raises(ApplicationError) as refused:
        await bus.dispatch(
            inventory.RegisterProduct("TEA-1", "Tea", _price("1.00")),
            CommandContext(command_id="x"),
        )
    assert refused.value.code == "command.id_reused"
    assert await bus.store.stream_version("inventory-TEA-1") == 0


async def test_a_wrong_field_type_is_refused_before_anything_is_read() -> None:
    bus = await bus_with()
    with pytest.raises(ApplicationError) as refused:
        await bus.dispatch(inventory.ReplenishStock("MUG-1", "5"))  # type: ignore[arg-type]
    assert refused.value.code == "command.invalid"
    assert refused.value.details["field"] == "ReplenishStock.quantity"


async def test_a_domain_rule_refusal_writes_nothing() -> None:
    bus = await bus_with()
    await register_mug(bus)
    head = await bus.store.head_position()
    with pytest.raises(DomainError) as refused:
        await bus.dispatch(inventory.RegisterProduct("MUG-1", "Mug", _price("1.00")))
    assert refused.value.code == "product.already_registered"
    assert await bus.store.head_position() == head


async def test_the_authorisation_hook_sees_the_command_and_the_actor() -> None:
    seen: list[tuple[str, frozenset[str]]] = []

    def authorize(command: object, context: CommandContext) -> bool:
        seen.append((type(command).__name__, context.roles))
        return "admin" in context.roles

    bus = await bus_with(authorize=authorize)
    with pytest.raises(PermissionDeniedError) as refused:
        await bus.dispatch(
            inventory.RegisterProduct("MUG-1", "Mug", _price("1.00")),
            CommandContext(user="eve", roles=frozenset({"customer"})),
        )
    assert refused.value.code == "auth.forbidden"
    assert await bus.store.stream_version("inventory-MUG-1") == 0
    await bus.dispatch(
        inventory.RegisterProduct("MUG-1", "Mug", _price("1.00")),
        CommandContext(roles=frozenset({"admin"})),
    )
    assert seen == [
        ("RegisterProduct", frozenset({"customer"})),
        ("RegisterProduct", frozenset({"admin"})),
    ]


async def test_an_async_authorisation_hook_is_awaited() -> None:
    async def deny(command: object, context: CommandContext) -> bool:
        return False

    bus = await bus_with(authorize=deny)
    with pytest.raises(ApplicationError):
        await bus.dispatch(inventory.RegisterProduct("MUG-1", "Mug", _price("1.00")))


async def test_metric_hooks_get_type_outcome_and_duration() -> None:
    calls: list[tuple[str, str, float]] = []
    bus = await bus_with(metric_hooks=[lambda t, o, s: calls.append((t, o, s))])
    await register_mug(bus)
    with pytest.raises(DomainError):
        await register_mug(bus)
    assert [(t, o) for t, o, _ in calls] == [
        ("RegisterProduct", "ok"),
        ("RegisterProduct", "rejected"),
    ]
    assert all(seconds >= 0 for _, _, seconds in calls)


async def test_a_failing_metric_hook_never_fails_the_command() -> None:
    def broken(t: str, o: str, s: float) -> None:
        raise RuntimeError("boom")

    bus = await bus_with(metric_hooks=[broken])
    await register_mug(bus)
    assert await bus.store.stream_version("inventory-MUG-1") == 2


async def test_a_callers_expected_version_that_does_not_match_is_a_conflict_without_retry() -> None:
    bus = await bus_with()
    await register_mug(bus)
    with pytest.raises(ConcurrencyError) as conflict:
        await bus.dispatch(inventory.ReplenishStock("MUG-1", 1), CommandContext(expected_version=1))
    assert (conflict.value.expected, conflict.value.actual) == (1, 2)
    result = await bus.dispatch(
        inventory.ReplenishStock("MUG-1", 1), CommandContext(expected_version=2)
    )
    assert result.version == 3


def interfering_route(route: Route, writes: int) -> Route:
    """A route whose prepare step lets another writer append to the stream first, ``writes``
    times: the conflict a concurrent process causes between our load and our append."""
    remaining = [writes]

    async def prepare(command: Any, state: Any, services: Services, envelope: Envelope) -> Any:
        if remaining[0] > 0:
            remaining[0] -= 1
            await services.store.append(
                envelope.stream_id, [NewEvent("StockReplenished", {"sku": "MUG-1", "quantity": 1})]
            )
        return command

    return replace(route, prepare=prepare)


async def test_a_conflicting_write_is_retried_on_fresh_state_and_no_update_is_lost() -> None:
    store = await memory_store()
    routes = order_routes()
    routes[inventory.ReplenishStock] = interfering_route(routes[inventory.ReplenishStock], 2)
    bus = CommandBus(store, routes=routes, repositories=OrderRepositories.build(store))
    await register_mug(bus, stock=10)
    result = await bus.dispatch(inventory.ReplenishStock("MUG-1", 5))
    assert result.version == 5  # 2 registration events, 2 interfering, then ours
    loaded = await bus.repositories.inventory.load("inventory-MUG-1")
    assert loaded.state.on_hand == 10 + 1 + 1 + 5


async def test_retries_are_bounded_and_end_in_a_clear_conflict() -> None:
    store = await memory_store()
    routes = order_routes()
    routes[inventory.ReplenishStock] = interfering_route(routes[inventory.ReplenishStock], 99)
    policy = RetryPolicy(attempts=3, base_delay=0, max_delay=0)
    bus = CommandBus(
        store,
        routes=routes,
        repositories=OrderRepositories.build(store),
        middleware=default_middleware(store, retry=policy),
    )
    await register_mug(bus, stock=10)
    with pytest.raises(ConcurrencyError):
        await bus.dispatch(inventory.ReplenishStock("MUG-1", 5))
    written = await store.read_stream("inventory-MUG-1", from_version=3)
    assert written  # the interferer wrote on every attempt…
    assert all(e.data["quantity"] == 1 for e in written)  # …and our command never did


async def test_a_no_op_command_reports_where_the_stream_is() -> None:
    bus = await bus_with()
    await register_mug(bus)
    result = await bus.dispatch(inventory.ReleaseStock("MUG-1", "order-x"))
    assert (result.version, result.position, result.events) == (2, 2, [])


async def test_an_unknown_command_type_is_refused() -> None:
    bus = await bus_with()
    with pytest.raises(ApplicationError) as refused:
        await bus.dispatch(object())
    assert refused.value.code == "command.unknown"


# --- handlers that look things up ------------------------------------------------------------


async def test_order_numbers_are_allocated_in_sequence_per_year() -> None:
    bus = await bus_with()
    await register_mug(bus)
    first = await bus.dispatch(new_order(None, orders.OrderItem("MUG-1", 1)))
    second = await bus.dispatch(new_order(None))
    other_year = await bus.dispatch(replace(new_order(None), year=2027))
    numbers = [r.events[0].data["order_number"] for r in (first, second, other_year)]
    assert numbers == ["ORD-2026-000001", "ORD-2026-000002", "ORD-2027-000001"]


async def test_a_refused_create_burns_no_order_number() -> None:
    bus = await bus_with()
    with pytest.raises(DomainError) as refused:
        await bus.dispatch(new_order(None, orders.OrderItem("NOPE-1", 1)))
    assert refused.value.code == "product.not_found"
    assert await bus.store.stream_version("ordernumbers-2026") == 0


async def test_a_redelivered_create_keeps_its_order_number() -> None:
    bus = await bus_with()
    command = new_order(None)
    context = CommandContext(command_id="create-1")
    first = await bus.dispatch(command, context)
    again = await bus.dispatch(command, context)
    assert again.events[0].data["order_number"] == first.events[0].data["order_number"]
    assert await bus.store.stream_version("ordernumbers-2026") == 1


async def test_creating_an_order_that_exists_is_refused_without_a_number() -> None:
    bus = await bus_with()
    command = new_order(None)
    await bus.dispatch(command)
    with pytest.raises(DomainError) as refused:
        await bus.dispatch(command)
    assert refused.value.code == "order.already_exists"
    assert await bus.store.stream_version("ordernumbers-2026") == 1


async def test_an_added_item_is_priced_from_the_catalogue_at_that_moment() -> None:
    bus = await bus_with()
    await register_mug(bus, price="12.50")
    created = await bus.dispatch(new_order(None))
    order_id = created.events[0].data["order_id"]
    added = await bus.dispatch(orders.AddItem(order_id, "MUG-1", 2))
    assert added.events[0].data == {
        "order_id": order_id,
        "sku": "MUG-1",
        "name": "Mug",
        "quantity": 2,
        "unit_price": "12.50",
        "currency": "EUR",
    }


async def test_a_command_on_an_order_that_does_not_exist_is_not_found() -> None:
    bus = await bus_with()
    with pytest.raises(NotFoundError) as refused:
        await bus.dispatch(orders.PlaceOrder(str(uuid.uuid4()), "tok_ok"))
    assert refused.value.code == "order.not_found"


def _price(amount: str) -> Any:
    from cairn.orders.domain.money import Money

    return Money.of(amount, "EUR")


async def test_a_redelivered_command_gets_its_result_even_where_deciding_again_would_refuse() -> (
    None
):
    bus = await bus_with()
    await register_mug(bus)
    created = await bus.dispatch(new_order(None, orders.OrderItem("MUG-1", 1)))
    order_id = created.events[0].data["order_id"]
    context = CommandContext(command_id="place-1")
    first = await bus.dispatch(orders.PlaceOrder(order_id, "tok_ok"), context)
    again = await bus.dispatch(orders.PlaceOrder(order_id, "tok_ok"), context)
    assert again.replayed
    assert [e.id for e in again.events] == [e.id for e in first.events]
    with pytest.raises(DomainError) as refused:  # a new command id decides again
        await bus.dispatch(orders.PlaceOrder(order_id, "tok_ok"), CommandContext(command_id="p2"))
    assert refused.value.code == "order.not_draft"


# --- the cached fast path never answers from stale state -------------------------------------


async def test_a_refusal_on_a_stale_cached_state_is_rechecked_on_fresh_state() -> None:
    store = await memory_store()
    mine, theirs = order_command_bus(store), order_command_bus(store)  # two processes, two caches
    await register_mug(mine)
    created = await mine.dispatch(new_order(None))  # mine caches the empty draft
    order_id = created.events[0].data["order_id"]
    await theirs.dispatch(orders.AddItem(order_id, "MUG-1", 1))
    placed = await mine.dispatch(orders.PlaceOrder(order_id, "tok_ok"))  # not order.empty
    assert [e.type for e in placed.events] == ["OrderPlaced"]


async def test_a_no_op_on_a_stale_cached_state_is_rechecked_on_fresh_state() -> None:
    store = await memory_store()
    mine, theirs = order_command_bus(store), order_command_bus(store)
    await register_mug(mine, stock=10)  # mine caches the product with nothing reserved
    await theirs.dispatch(inventory.ReserveStock("MUG-1", "order-1", 4))
    released = await mine.dispatch(inventory.ReleaseStock("MUG-1", "order-1"))
    assert [(e.type, e.data["quantity"]) for e in released.events] == [("InventoryReleased", 4)]


async def test_a_decision_on_a_stale_cached_state_is_never_written() -> None:
    store = await memory_store()
    mine, theirs = order_command_bus(store), order_command_bus(store)
    await register_mug(mine)
    created = await mine.dispatch(new_order(None, orders.OrderItem("MUG-1", 1)))
    order_id = created.events[0].data["order_id"]
    await theirs.dispatch(orders.PlaceOrder(order_id, "tok_ok"))
    with pytest.raises(DomainError) as refused:  # the cache still says draft
        await mine.dispatch(orders.AddItem(order_id, "MUG-1", 1))
    assert refused.value.code == "order.not_draft"
    assert await store.stream_version(f"order-{order_id}") == 3


async def test_if_match_is_checked_against_the_stored_version_not_the_cache() -> None:
    store = await memory_store()
    mine, theirs = order_command_bus(store), order_command_bus(store)
    await register_mug(mine)  # mine caches version 2
    await theirs.dispatch(inventory.ReplenishStock("MUG-1", 1))  # now version 3
    result = await mine.dispatch(
        inventory.ReplenishStock("MUG-1", 1), CommandContext(expected_version=3)
    )
    assert result.version == 4
    with pytest.raises(ConcurrencyError):
        await theirs.dispatch(
            inventory.ReplenishStock("MUG-1", 1), CommandContext(expected_version=3)
        )


async def test_a_duplicate_delivery_that_loses_the_race_returns_the_winners_result() -> None:
    store = await memory_store()
    routes = order_routes()
    route = routes[inventory.ReplenishStock]
    context = CommandContext(command_id="dup-1")
    raced = [False]

    async def prepare(command: Any, state: Any, services: Services, envelope: Envelope) -> Any:
        if not raced[0]:  # the other delivery commits first, then a third writer appends
            raced[0] = True
            from cairn.application import event_id_for

            winner = NewEvent(
                "StockReplenished", {"sku": "MUG-1", "quantity": 5}, id=event_id_for("dup-1", 0)
            )
            await services.store.append(envelope.stream_id, [winner])
            await services.store.append(
                envelope.stream_id, [NewEvent("StockReplenished", {"sku": "MUG-1", "quantity": 1})]
            )
        return command

    routes[inventory.ReplenishStock] = replace(route, prepare=prepare)
    bus = CommandBus(store, routes=routes, repositories=OrderRepositories.build(store))
    await register_mug(bus, stock=10)
    result = await bus.dispatch(inventory.ReplenishStock("MUG-1", 5), context)
    from cairn.application import event_id_for

    assert result.version == 3
    assert [e.id for e in result.events] == [event_id_for("dup-1", 0)]
    loaded = await bus.repositories.inventory.load("inventory-MUG-1")
    assert loaded.state.on_hand == 10 + 5 + 1
