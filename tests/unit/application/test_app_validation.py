"""A command's fields have the types their annotations name, or ``command.invalid`` names the
first field that does not."""

from __future__ import annotations

from typing import Any

import pytest

from cairn.application.validation import check_command
from cairn.errors import InvalidCommandError
from cairn.orders.domain import inventory, orders
from cairn.orders.domain.money import Money

ADDRESS = orders.ShippingAddress("1 Main St", "Paris", "75001", "FR")


def refusal(command: object) -> InvalidCommandError:
    with pytest.raises(InvalidCommandError) as refused:
        check_command(command)
    assert refused.value.code == "command.invalid"
    return refused.value


def test_a_well_typed_command_passes() -> None:
    check_command(
        orders.CreateOrder("o-1", "c-1", "Ada", "a@example.com", "EUR", ADDRESS,
                           (orders.OrderItem("MUG-1", 2),), year=2026)
    )  # fmt: skip
    check_command(inventory.RegisterProduct("MUG-1", "Mug", Money.of("1.00", "EUR"), 2))


@pytest.mark.parametrize("quantity", ["5", True, 5.0, None])
def test_an_integer_field_takes_only_an_integer(quantity: Any) -> None:
    refused = refusal(inventory.ReplenishStock("MUG-1", quantity))
    assert refused.details["field"] == "ReplenishStock.quantity"
    assert str(refused).startswith("ReplenishStock.quantity must be")


def test_a_field_of_a_nested_dataclass_is_named_by_its_path() -> None:
    price = object.__new__(Money)
    object.__setattr__(price, "amount", 1.5)  # a float where money needs a Decimal
    object.__setattr__(price, "currency", "EUR")
    refused = refusal(inventory.RegisterProduct("MUG-1", "Mug", price, 2))
    assert refused.details["field"] == "RegisterProduct.unit_price.amount"


def test_a_list_where_a_tuple_is_annotated_is_refused() -> None:
    command = orders.CreateOrder(
        "o-1", "c-1", "Ada", "a@example.com", "EUR", ADDRESS,
        [orders.OrderItem("MUG-1", 2)],  # type: ignore[arg-type]
    )  # fmt: skip
    assert refusal(command).details["field"] == "CreateOrder.items"


def test_something_that_is_not_a_command_is_refused() -> None:
    refusal({"sku": "MUG-1"})
    refusal(inventory.ReplenishStock)
