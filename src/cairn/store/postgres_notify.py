"""The PostgreSQL event store's live wake-up: subscribers hear of appends at once, in this
process directly and in others through LISTEN/NOTIFY.

No NOTIFY inside the append transaction: at commit it takes a cluster-wide lock on the
notification queue (PostgreSQL 15), which would serialise every committing writer again. After
commit, appends flag a background task that sends at most one ``pg_notify`` per
``notify_interval`` (coalesced across appends); subscribers LISTEN on a dedicated connection and
still re-read every ``poll_interval * 20`` s as a safety net against lost notifications
(ADR 0001, "Live wake-up").
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from typing import Final

import psycopg

from cairn.errors import StoreUnavailableError
from cairn.sql.postgres_connect import CONNECT_TIMEOUT, Connect, connect
from cairn.waiting import wait_set

CHANNEL: Final = "cairn_events"
#: The payload that says a subject was forgotten (:meth:`Wakeup.announce_forgotten`).
FORGOTTEN: Final = "forgotten"
#: Listener connections are dedicated: their last (and only) statement stays ``LISTEN …``.
#: Our own listener does not count: this process's waiters were woken without a NOTIFY.
_LISTENERS_SQL: Final = (
    "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database() "
    "AND state = 'idle' AND query = %s AND pid <> %s)"
)


class Wakeup:
    """Who waits for appends, and how they are told.

    ``waiter`` is the event the next append (by anyone) sets; take it BEFORE reading, so that an
    append committing between the read and the wait still wakes the reader."""

    #: Coalescing window of the post-commit wake-up: at most one NOTIFY per window.
    notify_interval = 0.002
    #: How often the notifier checks whether any process LISTENs at all.
    listener_check_interval = 0.5

    def __init__(
        self,
        conninfo: str,
        connection: Connect,
        *,
        reconnect_delay: Callable[[], float],
        on_forgotten: Callable[[], None] = lambda: None,
    ) -> None:
        self._conninfo = conninfo
        self._on_forgotten = on_forgotten
        self._connection = connection
        self._reconnect_delay = reconnect_delay
        self.waiter = asyncio.Event()
        # Our NOTIFYs carry it, so our own listener knows them: signal() already woke this
        # process, and a second wake would cost each follower an empty read.
        self._token = uuid.uuid4().hex
        self._notify_pending = asyncio.Event()
        self._notifier: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._listener_ready: asyncio.Event | None = None
        #: The backend of our own LISTEN connection (0: none).
        self._listener_pid = 0
        #: How many notifications from other processes (or other stores of this one) arrived.
        self.foreign = 0
        self._closed = False

    def _wake_here(self) -> None:
        self.waiter.set()
        self.waiter = asyncio.Event()

    def signal(self) -> None:
        """Wake in-process waiters now, and other processes through one coalesced NOTIFY."""
        self._wake_here()
        if self._closed:
            return
        self._notify_pending.set()
        if self._notifier is None or self._notifier.done():
            self._notifier = asyncio.create_task(self._notify_loop())

    async def close(self) -> None:
        self._closed = True
        for task in (self._notifier, self._listener):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _notify_loop(self) -> None:
        listeners_checked = -1e9
        listeners = True
        loop = asyncio.get_running_loop()
        while not self._closed:
            await self._notify_pending.wait()
            self._notify_pending.clear()
            # After commit and outside any append transaction: NOTIFY inside the append would
            # take the global notify-queue lock at commit and serialise every writer again.
            check = loop.time() - listeners_checked > self.listener_check_interval
            if not (check or listeners):
                # Nobody listened at the last check: nothing to do until the next one.
                await asyncio.sleep(
                    max(listeners_checked + self.listener_check_interval - loop.time(), 0)
                )
                continue
            with contextlib.suppress(psycopg.Error, StoreUnavailableError):
                async with self._connection() as conn:
                    if check:
                        # A NOTIFY nobody listens to is a wasted statement per append window.
                        # A subscriber that starts between checks is served by its safety-net
                        # re-read (poll_interval * 20) until the next check.
                        cur = await conn.execute(
                            _LISTENERS_SQL, (f"LISTEN {CHANNEL}", self._listener_pid)
                        )
                        row = await cur.fetchone()
                        listeners = bool(row and row[0])
                        listeners_checked = loop.time()
                    if listeners:
                        await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, self._token))
            await asyncio.sleep(self.notify_interval)

    async def announce_forgotten(self) -> None:
        """Tell every listening process that a subject was forgotten (their ``on_forgotten``
        runs): what they keep opened for their followers must be opened again."""
        async with self._connection() as conn:
            await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, FORGOTTEN))

    @property
    def listening(self) -> bool:
        """Whether other processes' appends are being heard now (else only polling finds
        them)."""
        return self._listener_pid != 0

    async def ensure_listener(self) -> None:
        """Start LISTENing (once) for appends by other processes."""
        if self._listener is not None and not self._listener.done():
            return
        self._listener_ready = asyncio.Event()
        self._listener = asyncio.create_task(self._listen())
        await wait_set(self._listener_ready, CONNECT_TIMEOUT)

    async def _listen(self) -> None:
        """A dedicated connection LISTENs for appends made by any process; reconnects on loss."""
        while not self._closed:
            try:
                conn = await connect(self._conninfo)
                try:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self._listener_pid = conn.info.backend_pid
                    if self._listener_ready is not None:
                        self._listener_ready.set()
                    async for notification in conn.notifies():
                        if notification.payload == FORGOTTEN:
                            self._on_forgotten()
                        elif notification.payload != self._token:
                            self.foreign += 1
                            self._wake_here()
                finally:
                    self._listener_pid = 0
                    await conn.close()
            except (psycopg.Error, StoreUnavailableError):
                if self._listener_ready is not None:
                    self._listener_ready.set()  # fall back to polling while reconnecting
                await asyncio.sleep(self._reconnect_delay())
