"""Events and states ↔ JSON objects, by stable type name (never a Python import path).

Stored type names are listed explicitly in :data:`EVENT_TYPES`, so renaming a class can never
orphan history; an unknown stored name is :class:`~cairn.errors.UnknownEventTypeError`, never
silently dropped. Decimals travel as strings, Money as ``{"amount": "1.50", "currency": "EUR"}``
(only inside snapshots: event payloads carry ``amount`` and ``currency`` as separate fields, as
docs/events.md lists them). Converters are built once per class, from its type hints.
"""

from __future__ import annotations

import dataclasses
import hashlib
import types
import typing
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Final, TypeVar

from cairn.errors import CodecError, UnknownEventTypeError
from cairn.orders.domain import customers, inventory, orders, payments, shipping
from cairn.orders.domain.money import Money

T = TypeVar("T")
Convert = Callable[[Any], Any]

#: Every stored event type name and the class it decodes to. Never rename a key.
EVENT_TYPES: Final[Mapping[str, type]] = {
    "ProductRegistered": inventory.ProductRegistered,
    "StockReplenished": inventory.StockReplenished,
    "InventoryReserved": inventory.InventoryReserved,
    "InventoryReservationFailed": inventory.InventoryReservationFailed,
    "InventoryReleased": inventory.InventoryReleased,
    "StockCommitted": inventory.StockCommitted,
    "OrderCreated": orders.OrderCreated,
    "ItemAdded": orders.ItemAdded,
    "ItemRemoved": orders.ItemRemoved,
    "OrderPlaced": orders.OrderPlaced,
    "OrderConfirmed": orders.OrderConfirmed,
    "OrderShipped": orders.OrderShipped,
    "OrderDelivered": orders.OrderDelivered,
    "OrderCancelled": orders.OrderCancelled,
    "PaymentAuthorized": payments.PaymentAuthorized,
    "PaymentDeclined": payments.PaymentDeclined,
    "PaymentCaptured": payments.PaymentCaptured,
    "PaymentVoided": payments.PaymentVoided,
    "PaymentRefunded": payments.PaymentRefunded,
    "ShipmentCreated": shipping.ShipmentCreated,
    "ShipmentCancelled": shipping.ShipmentCancelled,
    "ShipmentDelivered": shipping.ShipmentDelivered,
    "CustomerForgotten": customers.CustomerForgotten,
}
_TYPE_NAMES: Final[Mapping[type, str]] = {cls: name for name, cls in EVENT_TYPES.items()}

#: Current schema version of each event type whose shape has evolved (all others are 1).
SCHEMA_VERSIONS: Final[Mapping[str, int]] = {"ItemAdded": 2}


def type_name(event: object) -> str:
    """The stored type name of a domain event."""
    try:
        return _TYPE_NAMES[type(event)]
    except KeyError:
        raise UnknownEventTypeError(
            f"{type(event).__name__} is not a registered event class"
        ) from None


def encode_event(event: object) -> tuple[str, dict[str, Any]]:
    """``(type name, JSON payload)`` of a domain event."""
    name = type_name(event)
    data: dict[str, Any] = _encoder(type(event))(event)
    return name, data


def decode_event(name: str, data: Mapping[str, Any]) -> Any:
    """The domain event stored as ``name`` with (current-schema) payload ``data``."""
    cls = EVENT_TYPES.get(name)
    if cls is None:
        raise UnknownEventTypeError(f"no event class for stored type {name!r}", event_type=name)
    try:
        return _decoder(cls)(data)
    except CodecError:
        raise
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        raise CodecError(f"stored {name} payload does not fit its class: {exc!r}") from exc


# --- states (snapshots) ----------------------------------------------------------------------


def encode_state(state: object) -> dict[str, Any]:
    return {"type": type(state).__name__, "data": _encoder(type(state))(state)}


def decode_state(union: Any, stored: Mapping[str, Any]) -> Any:
    members = {cls.__name__: cls for cls in typing.get_args(union)}
    cls = members.get(stored["type"])
    if cls is None:
        raise CodecError(f"{stored['type']!r} is not a member of the state union")
    return _decoder(cls)(stored["data"])


def schema_fingerprint(union: Any) -> str:
    """A short hash of a state union's shape: field names and types, recursively. A snapshot
    taken under another fingerprint is ignored, so changing a state class cannot misread one."""
    seen: list[str] = []

    def walk(tp: Any) -> None:
        for arg in typing.get_args(tp):
            walk(arg)
        if dataclasses.is_dataclass(tp) and isinstance(tp, type):
            hints = typing.get_type_hints(tp)
            entry = (
                tp.__name__
                + "("
                + ",".join(f"{f.name}:{hints[f.name]!r}" for f in dataclasses.fields(tp))
                + ")"
            )
            if entry not in seen:
                seen.append(entry)
                for f in dataclasses.fields(tp):
                    walk(hints[f.name])

    walk(union)
    return hashlib.sha256("|".join(seen).encode()).hexdigest()[:16]


# --- personal data ---------------------------------------------------------------------------

#: Personal fields of the order domain (SPEC §1: stored encrypted, crypto-shredded on
#: "forget customer"), and the field naming whose they are (the key's subject). Whatever marker
#: a shredded field reads back as, history still decodes.
PERSONAL_SUBJECT: Final = "customer_id"
PERSONAL_FIELDS: Final[Mapping[str, frozenset[str]]] = {
    "OrderCreated": frozenset({"customer_name", "customer_email", "shipping_address"}),
}
#: Value classes that may be replaced whole by a redaction marker (a string or null).
REDACTABLE: Final = frozenset({orders.ShippingAddress})


def _redacted(cls: type, marker: Any) -> Any:
    """A value object whose every text field is the redaction marker."""
    text = "" if marker is None else str(marker)
    hints = typing.get_type_hints(cls)
    return cls(
        **{f.name: (text if hints[f.name] is str else None) for f in dataclasses.fields(cls)}
    )


# --- converters ------------------------------------------------------------------------------

_encoders: dict[Any, Convert] = {}
_decoders: dict[Any, Convert] = {}


def _identity(value: Any) -> Any:
    return value


def _decimal_in(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise CodecError(f"expected a decimal string, got {value!r}")
    return Decimal(value)


def _encoder(tp: Any) -> Convert:
    cached = _encoders.get(tp)
    if cached is None:
        cached = _encoders[tp] = _build(tp, encode=True)
    return cached


def _decoder(tp: Any) -> Convert:
    cached = _decoders.get(tp)
    if cached is None:
        cached = _decoders[tp] = _build(tp, encode=False)
    return cached


def _build(tp: Any, *, encode: bool) -> Convert:
    convert = _encoder if encode else _decoder
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp in (str, int, bool):
        return _identity
    if tp is Decimal:
        return str if encode else _decimal_in
    if tp is Money:
        if encode:
            return lambda m: {"amount": str(m.amount), "currency": m.currency}
        return lambda d: Money(_decimal_in(d["amount"]), d["currency"])
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        if len(inner) != 1:
            raise CodecError(f"cannot convert the union {tp!r}")
        item = convert(inner[0])
        return lambda v: None if v is None else item(v)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        item = convert(args[0])
        if encode:
            return lambda v: [item(x) for x in v]
        return lambda v: tuple(item(x) for x in v)
    if origin is frozenset:
        item = convert(args[0])
        if encode:
            return lambda v: sorted(item(x) for x in v)
        return lambda v: frozenset(item(x) for x in v)
    if origin in (Mapping, dict):
        value = convert(args[1])
        return lambda v: {k: value(x) for k, x in v.items()}
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _dataclass_converter(tp, encode=encode)
    raise CodecError(f"no JSON conversion for {tp!r}")


def _dataclass_converter(cls: type[Any], *, encode: bool) -> Convert:
    hints = typing.get_type_hints(cls)
    fields = [(f.name, hints[f.name]) for f in dataclasses.fields(cls)]
    optional = {
        f.name
        for f in dataclasses.fields(cls)
        if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
    }
    # Resolved lazily so that recursive shapes and import order never matter.
    plan: list[tuple[str, Convert]] = []

    def ready() -> list[tuple[str, Convert]]:
        if not plan:
            plan.extend((name, _encoder(tp) if encode else _decoder(tp)) for name, tp in fields)
        return plan

    if encode:

        def encode_fields(obj: Any) -> dict[str, Any]:
            return {name: conv(getattr(obj, name)) for name, conv in ready()}

        return encode_fields

    def decode_fields(data: Mapping[str, Any]) -> Any:
        if not isinstance(data, Mapping):
            if cls in REDACTABLE:
                return _redacted(cls, data)
            raise CodecError(f"{cls.__name__} expects a JSON object, got {data!r}")
        kwargs = {
            name: conv(data[name]) for name, conv in ready() if name in data or name not in optional
        }
        return cls(**kwargs)

    return decode_fields


def event_class(name: str) -> type:
    cls = EVENT_TYPES.get(name)
    if cls is None:
        raise UnknownEventTypeError(f"no event class for stored type {name!r}", event_type=name)
    return cls


__all__ = [
    "EVENT_TYPES",
    "PERSONAL_FIELDS",
    "PERSONAL_SUBJECT",
    "SCHEMA_VERSIONS",
    "decode_event",
    "decode_state",
    "encode_event",
    "encode_state",
    "event_class",
    "schema_fingerprint",
    "type_name",
]
