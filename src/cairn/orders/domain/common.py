"""Checks every aggregate shares: quantities, SKUs, ids and short texts."""

from __future__ import annotations

import re
from typing import Final

from cairn.errors import DomainError

#: A quantity above this is bad input, never a big order (SPEC §3).
MAX_QUANTITY: Final = 1_000_000
MAX_TEXT: Final = 500

_SKU = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")


def check_quantity(quantity: object, *, allow_zero: bool = False) -> int:
    """A positive integer up to :data:`MAX_QUANTITY` (``quantity.invalid`` otherwise)."""
    lowest = 0 if allow_zero else 1
    if (
        isinstance(quantity, bool)
        or not isinstance(quantity, int)
        or not lowest <= quantity <= MAX_QUANTITY
    ):
        raise DomainError(
            "quantity.invalid",
            f"quantity must be an integer from {lowest} to {MAX_QUANTITY}, got {quantity!r}",
            quantity=repr(quantity),
        )
    return quantity


def check_sku(sku: object) -> str:
    if not isinstance(sku, str) or _SKU.fullmatch(sku) is None:
        raise DomainError(
            "sku.invalid",
            f"SKU {sku!r} must be 1-64 letters, digits or . _ : - starting with a letter or digit",
        )
    return sku


def check_text(value: object, field: str, *, required: bool = True, limit: int = MAX_TEXT) -> str:
    if not isinstance(value, str) or len(value) > limit or (required and not value.strip()):
        raise DomainError(
            f"{field}.invalid",
            f"{field} must be {'a non-empty' if required else 'a'} string of at most {limit} "
            "characters",
        )
    return value


def check_id(value: object, field: str) -> str:
    """Ids are opaque non-empty strings without whitespace (UUIDs in practice)."""
    if not isinstance(value, str) or not value or len(value) > 100 or value != value.strip():
        raise DomainError(f"{field}.invalid", f"{field} {value!r} is not a valid id")
    return value
