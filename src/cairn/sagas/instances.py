"""A saga's row as a transition needs it, and the rows a runner wrote last, kept in memory.

A transition reads the rows of its sagas, locked, before it writes them: on PostgreSQL that
read is a round trip of its own, on the path of every step. But the runner that owns a partition
wrote those rows itself a moment ago, so it keeps what it committed (:class:`KnownInstances`)
and sends, instead of the read, a guard pipelined with the writes (``cairn_saga_versions``,
migration 0004): each row locked and compared with the version remembered. When another
process wrote a row meanwhile (an operator's retry, a new owner after a lost lease), the guard
fails the transaction with :class:`~cairn.errors.StaleRowError`, nothing is written, and the
retry reads the row as before. What is remembered never decides a write on its own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, NamedTuple

from cairn.sagas.row_writes import state_json


@dataclass(frozen=True, slots=True)
class Instance:
    """A saga's row as a transition needs it."""

    key: str
    status: str
    state: dict[str, Any]
    version: int
    correlation_id: str | None
    #: The ids of every step it ever sent (a step sent again keeps its row).
    actions: frozenset[str] = frozenset()


class _Known(NamedTuple):
    key: str
    status: str
    #: Encoded: every use decodes its own copy, so a transition that failed half-way cannot
    #: have changed what is remembered.
    state: str
    version: int
    correlation_id: str | None
    actions: frozenset[str]


class KnownInstances:
    """The last committed row of the sagas this process wrote, at most ``capacity`` of them.

    :meth:`take` removes what it returns: a transaction that uses a row must :meth:`remember`
    the new one after its commit (``Tx.after_commit``), so a rolled-back transaction leaves
    nothing behind to trust. A saga that starts without a read is :meth:`doubted` until its
    row is remembered: if that transaction failed, the next one reads.
    """

    def __init__(self, capacity: int = 10_000) -> None:
        self._capacity = capacity
        self._rows: dict[str, _Known] = {}
        self._doubted: set[str] = set()

    def take(self, saga_id: str) -> Instance | None:
        known = self._rows.pop(saga_id, None)
        if known is None:
            return None
        return Instance(
            known.key,
            known.status,
            json.loads(known.state),
            known.version,
            known.correlation_id,
            known.actions,
        )

    def doubted(self, saga_id: str) -> bool:
        return saga_id in self._doubted

    def doubt(self, saga_id: str) -> None:
        self._doubted.add(saga_id)

    def remember(
        self, saga_id: str, instance: Instance, *, running: bool, state_text: str | None = None
    ) -> None:
        """``instance`` as committed; a saga no longer ``running`` receives little more and is
        only forgotten. ``state_text``: its state as JSON, when the caller has it (its row's)."""
        self._doubted.discard(saga_id)
        self._rows.pop(saga_id, None)
        if not running:
            return
        self._rows[saga_id] = _Known(
            instance.key,
            instance.status,
            state_text if state_text is not None else state_json(instance.state),
            instance.version,
            instance.correlation_id,
            instance.actions,
        )
        if len(self._rows) > self._capacity:
            del self._rows[next(iter(self._rows))]
