"""Reading ``$all`` in batches, once for every projection of an engine."""

from __future__ import annotations

import asyncio

from cairn.store.base import EventStore, RecordedEvent


class SharedReader:
    """One ``read_all`` for every projection at the same position.

    Projections of one engine usually move in step (catch-up, live): without sharing, each would
    fetch and decode the same batch from the store. A batch is kept only while a few others are
    newer; an empty batch is never kept (the log may have grown since).
    """

    def __init__(self, store: EventStore, keep: int = 16) -> None:
        self._store = store
        self._keep = keep
        self._batches: dict[tuple[int, int], asyncio.Future[list[RecordedEvent]]] = {}

    async def read(self, after: int, limit: int) -> list[RecordedEvent]:
        key = (after, limit)
        pending = self._batches.get(key)
        if pending is None:
            pending = self._start(key)
        batch = list(await asyncio.shield(pending))
        if len(batch) == limit and self._keep:
            # Catching up: fetch the next batch while this one is being applied.
            following = (batch[-1].position, limit)
            if following not in self._batches:
                self._start(following)
        return batch

    def _start(self, key: tuple[int, int]) -> asyncio.Future[list[RecordedEvent]]:
        # Live: a batch this process just appended comes from memory (read_all_live).
        task = asyncio.ensure_future(self._store.read_all_live(after=key[0], limit=key[1]))
        self._batches[key] = task

        def settled(done: asyncio.Future[list[RecordedEvent]]) -> None:
            # Failed or empty batches are not kept: the next reader asks the store again.
            failed = done.cancelled() or done.exception() is not None or not done.result()
            if failed and self._batches.get(key) is done:
                del self._batches[key]

        task.add_done_callback(settled)
        while len(self._batches) > max(self._keep, 1):
            oldest = next(iter(self._batches))
            if oldest == key:
                break
            del self._batches[oldest]
        return task

    def close(self) -> None:
        for pending in self._batches.values():
            pending.cancel()
        self._batches.clear()
