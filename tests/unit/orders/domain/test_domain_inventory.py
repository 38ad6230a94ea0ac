"""Product / inventory: given / when / then for every command and rule."""

from decimal import Decimal

import pytest
from domain_builders import product_registered

from cairn.decider import fold
from cairn.decider.testing import given
from cairn.orders.domain import inventory as inv
from cairn.orders.domain.money import Money

ORDER = "order-a"
MUG_PRICE = Money.of("12.50", "EUR")


def stocked(quantity: int = 10) -> list[inv.InventoryEvent]:
    return [product_registered(), inv.StockReplenished("MUG-1", quantity)]


def test_registering_a_product_records_it_with_its_price() -> None:
    given(inv.decider).when(inv.RegisterProduct("MUG-1", "Mug", MUG_PRICE)).then(
        [product_registered()]
    )


def test_registering_with_initial_stock_also_replenishes() -> None:
    state = (
        given(inv.decider)
        .when(inv.RegisterProduct("MUG-1", "Mug", MUG_PRICE, initial_stock=10))
        .then([product_registered(), inv.StockReplenished("MUG-1", 10)])
    )
    assert isinstance(state, inv.Product)
    assert (state.on_hand, state.reserved, state.available) == (10, 0, 10)


def test_a_sku_is_registered_only_once() -> None:
    given(inv.decider, [product_registered()]).when(
        inv.RegisterProduct("MUG-1", "Mug", MUG_PRICE)
    ).then_fails("product.already_registered")


@pytest.mark.parametrize("sku", ["", " MUG", "MUG 1", "x" * 65, "-MUG"])
def test_a_malformed_sku_is_refused(sku: str) -> None:
    given(inv.decider).when(inv.RegisterProduct(sku, "Mug", MUG_PRICE)).then_fails("sku.invalid")


def test_a_product_needs_a_name() -> None:
    given(inv.decider).when(inv.RegisterProduct("MUG-1", " ", MUG_PRICE)).then_fails("name.invalid")


def test_a_negative_price_is_refused() -> None:
    given(inv.decider).when(
        inv.RegisterProduct("MUG-1", "Mug", Money.of("-1.00", "EUR"))
    ).then_fails("price.invalid")


def test_replenishing_adds_to_on_hand() -> None:
    state = (
        given(inv.decider, stocked(10))
        .when(inv.ReplenishStock("MUG-1", 5))
        .then([inv.StockReplenished("MUG-1", 5)])
    )
    assert isinstance(state, inv.Product)
    assert state.on_hand == 15


def test_replenishing_an_unknown_product_is_not_found() -> None:
    given(inv.decider).when(inv.ReplenishStock("MUG-1", 5)).then_fails("product.not_found")


@pytest.mark.parametrize("quantity", [0, -1, 1_000_001, True])
def test_a_quantity_must_be_a_positive_integer_up_to_a_million(quantity: int) -> None:
    given(inv.decider, stocked()).when(inv.ReplenishStock("MUG-1", quantity)).then_fails(
        "quantity.invalid"
    )


def test_reserving_holds_stock_for_the_order() -> None:
    state = (
        given(inv.decider, stocked(10))
        .when(inv.ReserveStock("MUG-1", ORDER, 4))
        .then([inv.InventoryReserved("MUG-1", ORDER, 4)])
    )
    assert isinstance(state, inv.Product)
    assert (state.on_hand, state.reserved, state.available) == (10, 4, 6)


def test_reserving_more_than_available_records_a_failed_reservation() -> None:
    history = [*stocked(5), inv.InventoryReserved("MUG-1", "other", 3)]
    state = (
        given(inv.decider, history)
        .when(inv.ReserveStock("MUG-1", ORDER, 3))
        .then([inv.InventoryReservationFailed("MUG-1", ORDER, 3, 2, "insufficient_stock")])
    )
    assert isinstance(state, inv.Product)
    assert state.reserved == 3


def test_reserving_again_for_the_same_order_is_a_no_op() -> None:
    history = [*stocked(10), inv.InventoryReserved("MUG-1", ORDER, 4)]
    given(inv.decider, history).when(inv.ReserveStock("MUG-1", ORDER, 4)).then([])


def test_a_settled_reservation_is_never_made_again() -> None:
    history = [
        *stocked(10),
        inv.InventoryReserved("MUG-1", ORDER, 4),
        inv.InventoryReleased("MUG-1", ORDER, 4),
    ]
    given(inv.decider, history).when(inv.ReserveStock("MUG-1", ORDER, 4)).then([])


def test_releasing_gives_the_held_quantity_back() -> None:
    history = [*stocked(10), inv.InventoryReserved("MUG-1", ORDER, 4)]
    state = (
        given(inv.decider, history)
        .when(inv.ReleaseStock("MUG-1", ORDER))
        .then([inv.InventoryReleased("MUG-1", ORDER, 4)])
    )
    assert isinstance(state, inv.Product)
    assert (state.on_hand, state.reserved) == (10, 0)


def test_releasing_when_nothing_is_held_is_a_harmless_no_op() -> None:
    given(inv.decider, stocked()).when(inv.ReleaseStock("MUG-1", ORDER)).then([])


def test_committing_takes_the_reservation_out_of_stock() -> None:
    history = [*stocked(10), inv.InventoryReserved("MUG-1", ORDER, 4)]
    state = (
        given(inv.decider, history)
        .when(inv.CommitStock("MUG-1", ORDER))
        .then([inv.StockCommitted("MUG-1", ORDER, 4)])
    )
    assert isinstance(state, inv.Product)
    assert (state.on_hand, state.reserved, state.available) == (6, 0, 6)


def test_committing_twice_is_a_no_op() -> None:
    history = [
        *stocked(10),
        inv.InventoryReserved("MUG-1", ORDER, 4),
        inv.StockCommitted("MUG-1", ORDER, 4),
    ]
    given(inv.decider, history).when(inv.CommitStock("MUG-1", ORDER)).then([])


def test_committing_without_a_reservation_is_refused() -> None:
    given(inv.decider, stocked()).when(inv.CommitStock("MUG-1", ORDER)).then_fails(
        "inventory.not_reserved"
    )


@pytest.mark.parametrize(
    "command",
    [
        inv.ReserveStock("MUG-1", ORDER, 1),
        inv.ReleaseStock("MUG-1", ORDER),
        inv.CommitStock("MUG-1", ORDER),
    ],
)
def test_every_stock_command_on_an_unknown_product_is_not_found(
    command: inv.InventoryCommand,
) -> None:
    given(inv.decider).when(command).then_fails("product.not_found")


def test_the_catalogue_price_is_part_of_the_state() -> None:
    state = fold(inv.decider, [product_registered()])
    assert isinstance(state, inv.Product)
    assert state.unit_price == Money(Decimal("12.50"), "EUR")
