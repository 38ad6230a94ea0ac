"""Order: given / when / then for every command and rule of SPEC §3."""

from dataclasses import replace
from decimal import Decimal

import pytest
from domain_builders import (
    MUG,
    ORDER_ID,
    TEA,
    confirmed_history,
    create_order,
    draft_with_mug,
    item_added,
    order_created,
    placed,
    placed_history,
    shipped_history,
)

from cairn.decider.testing import given
from cairn.orders.domain import orders as o
from cairn.orders.domain.money import Money

# --- CreateOrder -----------------------------------------------------------------------------


def test_creating_an_order_records_it_in_draft() -> None:
    state = given(o.decider).when(create_order()).then([order_created()])
    assert isinstance(state, o.DraftOrder)
    assert state.order.order_number == "ORD-2026-000001"


def test_creating_with_items_adds_each_at_its_catalogue_price() -> None:
    state = (
        given(o.decider)
        .when(create_order(o.OrderItem("MUG-1", 2), o.OrderItem("TEA-1", 1)))
        .then([order_created(), item_added(MUG, 2), item_added(TEA, 1)])
    )
    assert isinstance(state, o.DraftOrder)
    assert state.order.total == Money.of("28.99", "EUR")


def test_creating_with_an_unknown_sku_is_refused() -> None:
    given(o.decider).when(create_order(o.OrderItem("NOPE-1", 1))).then_fails(
        "product.not_found", sku="NOPE-1"
    )


def test_an_order_is_created_only_once() -> None:
    given(o.decider, [order_created()]).when(create_order()).then_fails("order.already_exists")


def test_an_order_needs_its_allocated_number() -> None:
    given(o.decider).when(create_order(order_number="")).then_fails("order.number_missing")


def test_any_two_letter_country_is_accepted() -> None:
    address = o.ShippingAddress("1 Main St", "Nowhere", "00000", "ZZ")
    given(o.decider).when(create_order(shipping_address=address)).then(
        [order_created(shipping_address=address)]
    )


@pytest.mark.parametrize("country", ["", "F", "FRA", "1A"])
def test_a_country_must_be_two_letters(country: str) -> None:
    address = o.ShippingAddress("1 Main St", "Paris", "75001", country)
    given(o.decider).when(create_order(shipping_address=address)).then_fails(
        "shipping_address.country.invalid"
    )


def test_a_customer_email_must_look_like_one() -> None:
    given(o.decider).when(create_order(customer_email="ada")).then_fails("customer_email.invalid")


def test_an_order_currency_must_be_iso_4217() -> None:
    given(o.decider).when(create_order(currency="EURO")).then_fails("money.invalid_currency")


def test_items_priced_in_another_currency_are_refused() -> None:
    given(o.decider).when(create_order(o.OrderItem("MUG-1", 1), currency="USD")).then_fails(
        "order.currency_mismatch"
    )


@pytest.mark.parametrize("quantity", [0, -3, 1_000_001])
def test_create_refuses_a_bad_quantity(quantity: int) -> None:
    given(o.decider).when(create_order(o.OrderItem("MUG-1", quantity))).then_fails(
        "quantity.invalid"
    )


# --- AddItem / RemoveItem --------------------------------------------------------------------


def test_adding_an_item_takes_its_price_from_the_catalogue() -> None:
    given(o.decider, [order_created()]).when(o.AddItem(ORDER_ID, "MUG-1", 3, MUG)).then(
        [item_added(MUG, 3)]
    )


def test_adding_a_sku_already_on_the_order_grows_its_line() -> None:
    state = (
        given(o.decider, draft_with_mug(2))
        .when(o.AddItem(ORDER_ID, "MUG-1", 1, MUG))
        .then([item_added(MUG, 1)])
    )
    assert isinstance(state, o.DraftOrder)
    assert [(line.sku, line.quantity) for line in state.order.lines] == [("MUG-1", 3)]
    assert state.order.total == Money.of("37.50", "EUR")


def test_a_line_keeps_the_price_it_was_first_added_at() -> None:
    repriced = replace(MUG, unit_price=Money.of("99.00", "EUR"))
    given(o.decider, draft_with_mug(2)).when(o.AddItem(ORDER_ID, "MUG-1", 1, repriced)).then(
        [item_added(MUG, 1)]
    )


def test_adding_an_unknown_product_is_refused() -> None:
    given(o.decider, [order_created()]).when(o.AddItem(ORDER_ID, "NOPE-1", 1, None)).then_fails(
        "product.not_found"
    )


@pytest.mark.parametrize("quantity", [0, -1, 1_000_001])
def test_adding_a_bad_quantity_is_refused(quantity: int) -> None:
    given(o.decider, [order_created()]).when(
        o.AddItem(ORDER_ID, "MUG-1", quantity, MUG)
    ).then_fails("quantity.invalid")


def test_a_line_never_exceeds_a_million_units() -> None:
    given(o.decider, draft_with_mug(999_999)).when(o.AddItem(ORDER_ID, "MUG-1", 2, MUG)).then_fails(
        "quantity.invalid"
    )


def test_items_cannot_be_added_to_an_order_that_does_not_exist() -> None:
    given(o.decider).when(o.AddItem(ORDER_ID, "MUG-1", 1, MUG)).then_fails("order.not_found")


def test_items_change_only_in_draft() -> None:
    given(o.decider, placed_history()).when(o.AddItem(ORDER_ID, "MUG-1", 1, MUG)).then_fails(
        "order.not_draft"
    )
    given(o.decider, placed_history()).when(o.RemoveItem(ORDER_ID, "MUG-1")).then_fails(
        "order.not_draft"
    )


def test_removing_an_item_drops_its_whole_line() -> None:
    state = (
        given(o.decider, draft_with_mug(2))
        .when(o.RemoveItem(ORDER_ID, "MUG-1"))
        .then([o.ItemRemoved(ORDER_ID, "MUG-1")])
    )
    assert isinstance(state, o.DraftOrder)
    assert state.order.lines == ()


def test_removing_a_sku_not_on_the_order_is_refused() -> None:
    given(o.decider, draft_with_mug()).when(o.RemoveItem(ORDER_ID, "TEA-1")).then_fails(
        "order.item_not_found"
    )


# --- PlaceOrder ------------------------------------------------------------------------------


def test_placing_records_the_lines_and_the_total() -> None:
    history = [*draft_with_mug(2), item_added(TEA, 3)]
    state = (
        given(o.decider, history)
        .when(o.PlaceOrder(ORDER_ID, "tok_ok"))
        .then([placed((MUG, 2), (TEA, 3))])
    )
    assert isinstance(state, o.PlacedOrder)
    assert state.order.total.amount == Decimal("36.97")


def test_an_order_with_no_items_cannot_be_placed() -> None:
    given(o.decider, [order_created()]).when(o.PlaceOrder(ORDER_ID, "tok_ok")).then_fails(
        "order.empty"
    )


def test_an_order_whose_items_were_all_removed_cannot_be_placed() -> None:
    history = [*draft_with_mug(), o.ItemRemoved(ORDER_ID, "MUG-1")]
    given(o.decider, history).when(o.PlaceOrder(ORDER_ID, "tok_ok")).then_fails("order.empty")


def test_an_order_is_placed_only_once() -> None:
    given(o.decider, placed_history()).when(o.PlaceOrder(ORDER_ID, "tok_ok")).then_fails(
        "order.not_draft"
    )


def test_placing_needs_a_payment_method() -> None:
    given(o.decider, draft_with_mug()).when(o.PlaceOrder(ORDER_ID, "")).then_fails(
        "payment_method.invalid"
    )


# --- ConfirmOrder / ShipOrder / DeliverOrder -------------------------------------------------


def test_a_placed_order_is_confirmed_with_its_payment_and_shipment() -> None:
    state = (
        given(o.decider, placed_history())
        .when(o.ConfirmOrder(ORDER_ID, "pay-1", "ship-1"))
        .then([o.OrderConfirmed(ORDER_ID, "pay-1", "ship-1")])
    )
    assert isinstance(state, o.ConfirmedOrder)


@pytest.mark.parametrize("history", [draft_with_mug(), confirmed_history(), shipped_history()])
def test_only_a_placed_order_can_be_confirmed(history: list[o.OrderEvent]) -> None:
    given(o.decider, history).when(o.ConfirmOrder(ORDER_ID, "pay-1", "ship-1")).then_fails(
        "order.invalid_transition"
    )


def test_a_confirmed_order_ships_with_its_shipment() -> None:
    given(o.decider, confirmed_history()).when(o.ShipOrder(ORDER_ID)).then(
        [o.OrderShipped(ORDER_ID, "ship-1")]
    )


@pytest.mark.parametrize("history", [draft_with_mug(), placed_history()])
def test_only_a_confirmed_order_ships(history: list[o.OrderEvent]) -> None:
    given(o.decider, history).when(o.ShipOrder(ORDER_ID)).then_fails("order.invalid_transition")


def test_an_order_ships_only_once() -> None:
    given(o.decider, shipped_history()).when(o.ShipOrder(ORDER_ID)).then_fails(
        "order.already_shipped"
    )


def test_a_shipped_order_is_delivered() -> None:
    state = (
        given(o.decider, shipped_history())
        .when(o.DeliverOrder(ORDER_ID))
        .then([o.OrderDelivered(ORDER_ID)])
    )
    assert state.status == "delivered"


def test_only_a_shipped_order_is_delivered() -> None:
    given(o.decider, confirmed_history()).when(o.DeliverOrder(ORDER_ID)).then_fails(
        "order.invalid_transition"
    )
    delivered = [*shipped_history(), o.OrderDelivered(ORDER_ID)]
    given(o.decider, delivered).when(o.DeliverOrder(ORDER_ID)).then_fails("order.already_delivered")


# --- CancelOrder -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("history", "previous"),
    [(draft_with_mug(), "draft"), (placed_history(), "placed"), (confirmed_history(), "confirmed")],
)
def test_an_order_is_cancelled_from_draft_placed_or_confirmed(
    history: list[o.OrderEvent], previous: str
) -> None:
    state = (
        given(o.decider, history)
        .when(o.CancelOrder(ORDER_ID, "changed my mind"))
        .then([o.OrderCancelled(ORDER_ID, "changed my mind", previous)])
    )
    assert isinstance(state, o.CancelledOrder)
    assert state.reason == "changed my mind"


def test_a_shipped_order_can_never_be_cancelled() -> None:
    given(o.decider, shipped_history()).when(o.CancelOrder(ORDER_ID)).then_fails(
        "order.already_shipped"
    )
    delivered = [*shipped_history(), o.OrderDelivered(ORDER_ID)]
    given(o.decider, delivered).when(o.CancelOrder(ORDER_ID)).then_fails("order.already_shipped")


def test_a_cancelled_order_is_cancelled_once() -> None:
    history = [*draft_with_mug(), o.OrderCancelled(ORDER_ID, "", "draft")]
    given(o.decider, history).when(o.CancelOrder(ORDER_ID)).then_fails("order.already_cancelled")


def test_a_cancelled_order_accepts_no_further_command() -> None:
    history = [*placed_history(), o.OrderCancelled(ORDER_ID, "", "placed")]
    given(o.decider, history).when(o.ConfirmOrder(ORDER_ID, "p", "s")).then_fails(
        "order.invalid_transition"
    )
    given(o.decider, history).when(o.AddItem(ORDER_ID, "MUG-1", 1, MUG)).then_fails(
        "order.not_draft"
    )


def test_order_numbers_have_the_documented_shape() -> None:
    assert o.format_order_number(2026, 123) == "ORD-2026-000123"
    assert o.format_order_number(2026, 1_234_567) == "ORD-2026-1234567"
