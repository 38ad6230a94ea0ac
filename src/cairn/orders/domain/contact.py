"""Where an order goes and whom it belongs to: the shipping address and the customer's email,
with the rules they must meet (checked by :func:`.orders.validate`)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from cairn.errors import DomainError
from cairn.orders.domain.common import check_text

_COUNTRY = re.compile(r"[A-Za-z]{2}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")


@dataclass(frozen=True, slots=True)
class ShippingAddress:
    line1: str
    city: str
    postal_code: str
    country: str
    line2: str | None = None


def check_address(address: object) -> ShippingAddress:
    if not isinstance(address, ShippingAddress):
        raise DomainError("shipping_address.invalid", "shipping address is missing")
    check_text(address.line1, "shipping_address.line1", limit=200)
    if address.line2 is not None:
        check_text(address.line2, "shipping_address.line2", required=False, limit=200)
    check_text(address.city, "shipping_address.city", limit=100)
    check_text(address.postal_code, "shipping_address.postal_code", limit=20)
    if not isinstance(address.country, str) or _COUNTRY.fullmatch(address.country) is None:
        raise DomainError("shipping_address.country.invalid", "country must be a two-letter code")
    return address


def check_email(email: str) -> None:
    check_text(email, "customer_email", limit=254)
    if _EMAIL.fullmatch(email) is None:
        raise DomainError("customer_email.invalid", f"{email!r} is not an email address")
