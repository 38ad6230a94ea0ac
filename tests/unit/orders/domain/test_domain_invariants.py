"""Invariants over random command sequences (hypothesis): whatever is asked, in any order,
stock never goes negative, reserved never exceeds on hand, an order's total is the sum of its
lines to the cent, status moves only along SPEC §3's graph, and every event survives JSON."""

from __future__ import annotations

import json
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from cairn.errors import DomainError
from cairn.orders.domain import codec
from cairn.orders.domain import inventory as inv
from cairn.orders.domain import orders as o
from cairn.orders.domain.money import Money

ORDERS = ["o1", "o2", "o3"]

inventory_commands = st.one_of(
    st.builds(inv.ReplenishStock, st.just("MUG-1"), st.integers(-2, 50)),
    st.builds(inv.ReserveStock, st.just("MUG-1"), st.sampled_from(ORDERS), st.integers(-1, 40)),
    st.builds(inv.ReleaseStock, st.just("MUG-1"), st.sampled_from(ORDERS)),
    st.builds(inv.CommitStock, st.just("MUG-1"), st.sampled_from(ORDERS)),
)


def roundtrip(event: object) -> object:
    name, data = codec.encode_event(event)
    return codec.decode_event(name, json.loads(json.dumps(data)))


@settings(max_examples=150, deadline=None)
@given(st.lists(inventory_commands, max_size=40))
def test_stock_never_goes_negative_and_reserved_never_exceeds_on_hand(
    commands: list[inv.InventoryCommand],
) -> None:
    state: inv.InventoryState = inv.evolve(
        inv.initial_state(), inv.ProductRegistered("MUG-1", "Mug", Decimal("1.00"), "EUR")
    )
    for command in commands:
        try:
            events = inv.decide(command, state)
        except DomainError:
            continue
        for event in events:
            assert roundtrip(event) == event
            state = inv.evolve(state, event)
        assert isinstance(state, inv.Product)
        assert state.on_hand >= 0
        assert 0 <= state.reserved <= state.on_hand
        assert state.reserved == sum(state.reservations.values())
        assert state.available >= 0


PRICES = ["0.01", "0.10", "0.99", "12.50", "3.33", "19.99", "1000.00"]
CATALOGUE = {
    f"SKU-{i}": o.CatalogueEntry(f"SKU-{i}", f"Product {i}", Money.of(price, "EUR"))
    for i, price in enumerate(PRICES)
}
skus = st.sampled_from(sorted(CATALOGUE))

order_commands = st.one_of(
    st.builds(
        lambda sku, q: o.AddItem("o1", sku, q, CATALOGUE[sku]), skus, st.integers(-1, 500_000)
    ),
    st.builds(lambda sku: o.RemoveItem("o1", sku), skus),
    st.just(o.PlaceOrder("o1", "tok_ok")),
    st.just(o.ConfirmOrder("o1", "pay", "ship")),
    st.just(o.ShipOrder("o1")),
    st.just(o.DeliverOrder("o1")),
    st.just(o.CancelOrder("o1", "because")),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(order_commands, max_size=30))
def test_order_total_status_and_money_stay_consistent(commands: list[o.OrderCommand]) -> None:
    address = o.ShippingAddress("1 Main St", "Paris", "75001", "FR")
    create = o.CreateOrder(
        "o1", "c1", "Ada", "ada@example.com", "EUR", address, order_number="ORD-2026-000001"
    )
    state: o.OrderState = o.initial_state()
    cents: dict[str, int] = {}  # independent ledger: integer cents per line
    for command in [create, *commands]:
        before = state.status
        try:
            events = o.decide(command, state)
        except DomainError:
            continue
        for event in events:
            assert roundtrip(event) == event
            state = o.evolve(state, event)
            if isinstance(event, o.ItemAdded):
                cents[event.sku] = cents.get(event.sku, 0) + event.quantity * int(
                    event.unit_price * 100
                )
            elif isinstance(event, o.ItemRemoved):
                cents.pop(event.sku, None)
            elif isinstance(event, o.OrderPlaced):
                assert event.total == Decimal(sum(cents.values())) / 100
        assert state.status == before or state.status in o.TRANSITIONS[before]
        assert not isinstance(state, o.NoOrder)
        total = state.order.total
        assert total == sum((line.line_total for line in state.order.lines), Money.zero("EUR"))
        assert total.amount == Decimal(sum(cents.values())) / 100
        assert all(0 < line.quantity <= 1_000_000 for line in state.order.lines)
