"""Money: a ``Decimal`` amount in one ISO 4217 currency, exact to the currency's minor unit.

No float ever touches an amount: JSON carries amounts as strings (``"59.98"``), and an amount
finer than the currency's minor unit (``"1.005"`` EUR) is refused rather than rounded, so no
operation can silently gain or lose a cent.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Final, Self

from cairn.errors import DomainError


def _codes(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: Active ISO 4217 codes. A code outside this set is bad input, not a new currency.
ISO_4217: Final = _codes(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP
    BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP
    GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR
    KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK
    MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR
    SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS
    UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XOF XPF YER ZAR ZMW ZWL
    """
)

#: Currencies whose minor unit is not the cent (ISO 4217 "exponent").
_EXPONENTS: Final = {
    **dict.fromkeys(_codes("BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX VND VUV XAF XOF XPF"), 0),
    **dict.fromkeys(_codes("BHD IQD JOD KWD LYD OMR TND"), 3),
}

#: Largest absolute amount accepted: far above any order, far below Decimal's precision.
MAX_AMOUNT: Final = Decimal("1e15")


def minor_unit(currency: str) -> int:
    """Digits after the decimal point for ``currency`` (2 for EUR, 0 for JPY, 3 for KWD)."""
    return _EXPONENTS.get(currency, 2)


def check_currency(currency: object) -> str:
    if not isinstance(currency, str) or currency not in ISO_4217:
        raise DomainError(
            "money.invalid_currency", f"{currency!r} is not an ISO 4217 currency code"
        )
    return currency


def parse_amount(value: object) -> Decimal:
    """A Decimal from a Decimal, an int or a decimal string; never from a float."""
    if isinstance(value, bool | float):
        raise DomainError(
            "money.invalid", f"amount {value!r} must be a decimal string, not a float"
        )
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, str):
        try:
            amount = Decimal(value.strip())
        except InvalidOperation:
            raise DomainError("money.invalid", f"amount {value!r} is not a number") from None
    else:
        raise DomainError("money.invalid", f"amount {value!r} is not a decimal")
    if not amount.is_finite() or abs(amount) >= MAX_AMOUNT:
        raise DomainError("money.invalid", f"amount {value!r} is out of range")
    return amount


@dataclass(frozen=True, slots=True, order=False)
class Money:
    """An exact amount of one currency, always quantized to that currency's minor unit."""

    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        check_currency(self.currency)
        amount = parse_amount(self.amount)
        exponent = Decimal(1).scaleb(-minor_unit(self.currency))
        quantized = amount.quantize(exponent)
        if quantized != amount:
            raise DomainError(
                "money.invalid",
                f"{amount} {self.currency} is finer than the currency's minor unit",
            )
        object.__setattr__(self, "amount", quantized + 0)  # + 0 turns -0.00 into 0.00

    @classmethod
    def of(cls, amount: Decimal | int | str, currency: str) -> Self:
        return cls(parse_amount(amount), currency)

    @classmethod
    def zero(cls, currency: str) -> Self:
        return cls(Decimal(0), currency)

    def _same_currency(self, other: Money) -> None:
        if not isinstance(other, Money):
            raise TypeError(f"cannot combine Money with {type(other).__name__}")
        if other.currency != self.currency:
            raise DomainError(
                "money.currency_mismatch",
                f"cannot combine {self.currency} with {other.currency}",
            )

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount - other.amount, self.currency)

    def __mul__(self, quantity: int) -> Money:
        if isinstance(quantity, bool) or not isinstance(quantity, int):
            raise TypeError("Money can only be multiplied by an integer quantity")
        return Money(self.amount * quantity, self.currency)

    __rmul__ = __mul__

    def __lt__(self, other: Money) -> bool:
        self._same_currency(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same_currency(other)
        return self.amount <= other.amount

    def __gt__(self, other: Money) -> bool:
        self._same_currency(other)
        return self.amount > other.amount

    def __ge__(self, other: Money) -> bool:
        self._same_currency(other)
        return self.amount >= other.amount

    @property
    def is_negative(self) -> bool:
        return self.amount < 0

    def to_json(self) -> str:
        """The amount as JSON carries it: a string with exactly the minor-unit digits."""
        return str(self.amount)

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"
