"""Persisted timers: a saga's deadline, written in the same transaction that starts the saga.

A timer is a row (``saga_timers``), so it survives a crash and fires after a restart. Firing a
timer deletes its row in the same transaction that delivers its message to the saga
(:meth:`.transitions.Transitions.fire_due_timer`), so it fires at most once; a timer whose saga
has moved on (completed, already compensating) is *stale*: the saga's ``handle`` ignores it.
Retry timers of steps are the ``due_at`` of ``saga_actions`` rows. The statements on
``saga_timers`` are :mod:`.repository`'s (``schedule_timer``, ``cancel_timer``,
``claim_due_timer``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from cairn.uuids import uuid5_text

#: The kind of a saga's overall deadline timer (delivered as ``DeadlineExpired``).
DEADLINE: Final = "deadline"


@dataclass(frozen=True, slots=True)
class Timer:
    timer_id: str
    saga_id: str
    kind: str
    due_at: float
    payload: dict[str, Any]


def timer_id_for(saga_id: str, kind: str) -> str:
    """One timer of each kind per saga: setting it again moves it."""
    return uuid5_text(saga_id, f"timer:{kind}")
