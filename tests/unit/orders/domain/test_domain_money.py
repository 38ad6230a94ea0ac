"""Money: exact Decimal amounts in an ISO 4217 currency, never a float."""

from decimal import Decimal

import pytest

from cairn.errors import DomainError
from cairn.orders.domain.money import Money


def test_amounts_are_quantized_to_the_minor_unit_of_their_currency() -> None:
    assert Money.of("12.5", "EUR").to_json() == "12.50"
    assert Money.of("1200", "JPY").to_json() == "1200"
    assert Money.of("1.5", "KWD").to_json() == "1.500"


def test_an_amount_finer_than_the_minor_unit_is_refused_not_rounded() -> None:
    with pytest.raises(DomainError) as refused:
        Money.of("1.005", "EUR")
    assert refused.value.code == "money.invalid"


def test_a_float_is_never_accepted_as_an_amount() -> None:
    with pytest.raises(DomainError) as refused:
        Money.of(19.99, "EUR")  # type: ignore[arg-type]
    assert refused.value.code == "money.invalid"


@pytest.mark.parametrize("amount", ["NaN", "Infinity", "1e20", "abc", ""])
def test_non_finite_huge_or_malformed_amounts_are_refused(amount: str) -> None:
    with pytest.raises(DomainError) as refused:
        Money.of(amount, "EUR")
    assert refused.value.code == "money.invalid"


@pytest.mark.parametrize("currency", ["eur", "EURO", "XXX", "", "ZZZ"])
def test_a_currency_outside_iso_4217_is_refused(currency: str) -> None:
    with pytest.raises(DomainError) as refused:
        Money.of("1.00", currency)
    assert refused.value.code == "money.invalid_currency"


def test_arithmetic_is_exact() -> None:
    total = Money.of("0.10", "EUR") + Money.of("0.20", "EUR")
    assert total == Money.of("0.30", "EUR")
    assert Money.of("19.99", "EUR") * 3 == Money(Decimal("59.97"), "EUR")


def test_currencies_never_mix() -> None:
    with pytest.raises(DomainError) as refused:
        Money.of("1.00", "EUR") + Money.of("1.00", "USD")
    assert refused.value.code == "money.currency_mismatch"


def test_negative_zero_reads_as_zero() -> None:
    assert Money.of("-0.00", "EUR").to_json() == "0.00"
