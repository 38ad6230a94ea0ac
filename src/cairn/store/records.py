"""What the event store reports besides events: a stream's lifecycle settings, a snapshot of a
fold, and how far uncommitted writers hold ``$all`` readers back. Plain records, shared by
every backend (:mod:`cairn.store.base` re-exports them with the store's interface)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """A stream's lifecycle settings."""

    stream_id: str
    version: int
    deleted: bool = False
    truncate_before: int = 0
    max_age_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A cached fold of a stream up to ``version``. An optimisation only: deleting every
    snapshot must change no result, so the store may drop them at will."""

    stream_id: str
    version: int
    state: dict[str, Any]
    #: Identifies the state's shape; a snapshot whose ``schema`` the loader does not expect is
    #: ignored and the stream folded from the start.
    schema: str
    recorded_at: datetime


@dataclass(slots=True)
class HorizonStatus:
    """How far readers of ``$all`` are being held back by uncommitted writers.

    ``head`` is the highest position any reader can see; ``lag_events`` counts committed events
    above the first position readers may not pass yet; ``oldest_writer_seconds`` is the age of the
    oldest open write transaction (0 where writes are serialised and the question cannot arise).
    """

    head: int = 0
    lag_events: int = 0
    oldest_writer_seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)
