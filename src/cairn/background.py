"""Which work may wait: a worker's (projections, sagas and their steps, the relay) gives way to
requests when both wait for the same thing.

``cairn serve`` runs the API and the workers on one event loop and one connection budget.
Under load a request waiting behind a saga step's append is latency a user sees; the step's wait
is not (a saga has seconds, a request's p99 has a tenth of one). So the connection pools serve
waiting requests first (:class:`cairn.sql.pool.HotConnections`), and background work that has
waited its patience out goes first again, so it cannot starve.

A task marks itself with :func:`mark_background`; the tasks it starts afterwards inherit the mark
(asyncio copies the context into a new task), so marking a worker's supervising task marks
everything the worker does.
"""

from __future__ import annotations

from contextvars import ContextVar

__all__ = ["is_background", "mark_background"]

_background: ContextVar[bool] = ContextVar("cairn_background", default=False)


def mark_background() -> None:
    """The running task (and every task it starts from now on) does background work."""
    _background.set(True)


def is_background() -> bool:
    return _background.get()
