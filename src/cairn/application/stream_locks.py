"""One command at a time per stream inside a process.

Commands on one stream decide on its state and append with that state's version as the
expected version; two that run at once in one process both decide on the same version, one
wins, the other's append fails and runs again (a fresh load, a fresh decision). On a hot
stream (one product every order reserves, the order-number counter of a busy API) most
attempts were such wasted work. Queueing them here instead lets each decide on the state its
predecessor just saved (the repository's cache), without a read. Other processes are still
kept out by the expected version only, as before.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class StreamLocks:
    """An ``asyncio.Lock`` per stream, kept only while someone holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}

    def __len__(self) -> int:
        return len(self._locks)

    @asynccontextmanager
    async def hold(self, stream_id: str) -> AsyncIterator[None]:
        entry = self._locks.get(stream_id)
        if entry is None:
            entry = self._locks[stream_id] = (asyncio.Lock(), [0])
        lock, users = entry
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if users[0] == 0:
                del self._locks[stream_id]
