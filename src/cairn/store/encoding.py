"""How payloads travel: JSON text encoded once, before any backend touches it, and times as
whole microseconds since the epoch.

Every backend encodes through here, so what one accepts the others accept: NaN, infinities,
non-string keys, non-JSON values and U+0000 are refused alike (ADR 0002, "Payloads").
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from cairn.errors import InvalidEventError

if TYPE_CHECKING:
    from cairn.store.base import NewEvent

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def to_micros(moment: datetime) -> int:
    """Whole microseconds since the epoch: an exact, DateStyle-free way to carry a time."""
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int) -> datetime:
    return EPOCH + timedelta(microseconds=micros)


#: ``\u0000`` in JSON text that is an escape (an odd number of backslashes), not a literal.
NUL_ESCAPE: Final = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


#: One encoder for every payload: ``json.dumps`` with options builds a new one per call.
_ENCODER: Final = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def encode_json(value: Mapping[str, Any], what: str) -> str:
    """Serialise a payload or metadata object; anything JSON cannot carry is bad input."""
    if type(value) is not dict and not isinstance(value, Mapping):  # the ABC check is slow
        raise InvalidEventError(f"event {what} must be a JSON object, got {type(value).__name__}")
    try:
        text = _ENCODER.encode(value)
    except (TypeError, ValueError) as exc:
        raise InvalidEventError(f"event {what} is not JSON-serialisable: {exc}") from None
    # PostgreSQL's jsonb cannot hold U+0000; refuse it on every backend alike, so that what a
    # laptop (SQLite) accepts, production (PostgreSQL) accepts too.
    if "\\u0000" in text and NUL_ESCAPE.search(text):
        raise InvalidEventError(f"event {what} contains a NUL character (U+0000)")
    return text


def encode_batch(documents: list[dict[str, Any]], events: Sequence[NewEvent]) -> str:
    """One JSON text for a whole batch of ``documents`` built around ``events``' payloads: one
    encoder call instead of two per event. Refuses what :func:`encode_json` refuses, naming the
    payload at fault."""
    if all(
        type(e.data) is dict and (e.metadata is None or type(e.metadata) is dict) for e in events
    ):
        try:
            text = _ENCODER.encode(documents)
        except (TypeError, ValueError):
            pass
        else:
            if "\\u0000" not in text or not NUL_ESCAPE.search(text):
                return text
    for e in events:  # something is wrong or unusual: let the per-payload check name it
        encode_json(e.data, "data")
        encode_json(e.metadata or {}, "metadata")
    return _ENCODER.encode(documents)


def decode_payloads(encoded: Sequence[tuple[str, str]]) -> list[list[Any]]:
    """``(data, metadata)`` JSON texts decoded by ONE ``json.loads`` for the whole batch."""
    decoded: list[list[Any]] = json.loads("[" + ",".join([f"[{d},{m}]" for d, m in encoded]) + "]")
    return decoded
