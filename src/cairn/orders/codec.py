"""Between the domain's event classes and the store's records.

``domain_upcasters()`` is what ``open_store(..., upcasters=)`` needs for the order domain's
history: every registered step of :mod:`cairn.orders.domain.upcasters`, so readers always
receive the current shape (``RecordedEvent.schema_version`` is the current version after upcasting).
``domain_personal_data()`` is what ``open_store(..., personal_data=)`` needs to seal the
domain's personal fields.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Final

from cairn.application import codec as application_codec
from cairn.orders.domain import codec
from cairn.orders.domain.upcasters import STEPS
from cairn.store.base import NewEvent
from cairn.store.personal import PersonalDataPolicy, PersonalFields
from cairn.store.upcasting import Upcasters


def domain_upcasters() -> Upcasters:
    """A fresh registry with every upcasting step of the order domain."""
    upcasters = Upcasters()
    for event_type, from_version, step in STEPS:
        upcasters.add(event_type, from_version, step)
    for event_type, version in codec.SCHEMA_VERSIONS.items():
        if upcasters.current_version(event_type) != version:  # pragma: no cover - a wiring bug
            raise RuntimeError(f"{event_type}: codec says v{version}, upcasters disagree")
    return upcasters


def domain_personal_data() -> PersonalDataPolicy:
    """What ``open_store(..., personal_data=)`` needs for the order domain: its personal
    fields, sealed with the key of the customer they belong to."""
    return PersonalDataPolicy(
        {
            event_type: PersonalFields(codec.PERSONAL_SUBJECT, fields)
            for event_type, fields in codec.PERSONAL_FIELDS.items()
        }
    )


class OrderCodec:
    """The order domain's :class:`~cairn.application.codec.AggregateCodec`."""

    def encode_event(self, event: object) -> tuple[str, dict[str, Any]]:
        return codec.encode_event(event)

    def decode_event(self, name: str, data: Mapping[str, Any]) -> Any:
        return codec.decode_event(name, data)

    def schema_version(self, name: str) -> int:
        return codec.SCHEMA_VERSIONS.get(name, 1)

    def encode_state(self, state: object) -> dict[str, Any]:
        return codec.encode_state(state)

    def decode_state(self, union: Any, stored: Mapping[str, Any]) -> Any:
        return codec.decode_state(union, stored)

    def schema_fingerprint(self, union: Any) -> str:
        return codec.schema_fingerprint(union)


ORDER_CODEC: Final = OrderCodec()


def to_new_events(
    events: Sequence[object], ids: Sequence[uuid.UUID], metadata: Mapping[str, Any]
) -> list[NewEvent]:
    """Order-domain events as store records, with the given ids and current schema versions."""
    return application_codec.to_new_events(ORDER_CODEC, events, ids, metadata)
