"""The events this process appended last, by position, for its own live followers of ``$all``.

A follower in the process that wrote an event (the saga runner after a step's command, a
projection after an API command) would otherwise read back from the database, one round trip
later, what the append already handed back. Taking them from here is safe only for a run that
continues the follower's position without a hole: every position up to the follower's was read
already and the run's own positions are committed (recorded only after the append returned),
so nothing can commit in between. Anything else (a hole, an event another process wrote) is
read from the database as before (:meth:`cairn.store.postgres.PostgresEventStore.follow`).

The events are kept as their appender got them, personal fields opened with the keys the
append used (:meth:`RecentAppends.opened`): a follower taking them looks up no key. Forgetting
a subject clears them, in this process at once and in the others when they hear the store's
``forgotten`` notification (:mod:`cairn.store.postgres_notify`): a follower that takes an
event in the instant between the key's deletion and that notification reads it opened, as one
that read it just before the forget would (each then reaches the ``CustomerForgotten`` event
later in the log and erases its copies, docs/operations.md).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Final

from cairn.store.base import AppendResult, RecordedEvent

#: How many positions are kept: enough for a follower a few batches behind a burst.
CAPACITY: Final = 4096


class RecentAppends:
    """Appended events by position, the newest :data:`CAPACITY` of them; decoded only when a
    follower takes them."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self._capacity = capacity
        self._by_position: dict[int, tuple[AppendResult, int]] = {}
        self._order: deque[int] = deque()

    def record(self, positions: Sequence[int], result: AppendResult) -> None:
        """An append that committed: ``positions`` of its events, in order."""
        for index, position in enumerate(positions):
            self._by_position[position] = (result, index)
            self._order.append(position)
        while len(self._order) > self._capacity:
            self._by_position.pop(self._order.popleft(), None)

    def opened(self, stored: AppendResult, opened: AppendResult) -> None:
        """Keep ``opened`` (the same events, personal fields opened) in place of ``stored``."""
        by_position = self._by_position
        for index, event in enumerate(opened.events):
            entry = by_position.get(event.position)
            if entry is not None and entry[0] is stored:
                by_position[event.position] = (opened, index)

    def clear(self) -> None:
        """Keep nothing (a subject was forgotten: followers read from the database again)."""
        self._by_position.clear()
        self._order.clear()

    def run_after(self, position: int, limit: int) -> list[RecordedEvent]:
        """The events at ``position + 1``, ``position + 2``… while each is here, at most
        ``limit`` of them (none when the next position is not)."""
        run: list[RecordedEvent] = []
        nxt = position + 1
        while len(run) < limit:
            entry = self._by_position.get(nxt)
            if entry is None:
                break
            result, index = entry
            run.append(result.events[index])
            nxt += 1
        return run
