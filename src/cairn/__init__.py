"""cairn: an event-sourced order-processing system and the event-sourcing toolkit under it.

The stable public API is what ``__all__`` lists; everything else may change between releases.
"""

from cairn.errors import CairnError, ConcurrencyError
from cairn.store import (
    ANY,
    NO_STREAM,
    STREAM_EXISTS,
    AppendResult,
    EventStore,
    NewEvent,
    RecordedEvent,
    Upcasters,
    open_store,
)

__all__ = [
    "ANY",
    "NO_STREAM",
    "STREAM_EXISTS",
    "AppendResult",
    "CairnError",
    "ConcurrencyError",
    "EventStore",
    "NewEvent",
    "RecordedEvent",
    "Upcasters",
    "open_store",
]
__version__ = "0.1.0"
