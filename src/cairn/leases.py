"""One owner at a time for a named piece of work (a projection, the relay, a saga partition).

PostgreSQL: a session advisory lock on a dedicated connection, one per process shared by all its
leases (:class:`Leases`). If the owning process dies, the server ends its session and the lock
is released, so another worker takes over on its next attempt (workers retry every
``retry_interval``): no expiry timer to tune and no clock skew.
SQLite: an exclusive ``flock`` on a file beside the database; the kernel releases it when the
process dies. Memory: a process-local registry (a memory store is single-process by nature).

An owner calls ``still_held()`` before committing work, so a worker that lost its connection
(and therefore its lock) stops instead of writing beside the new owner.

A database that cannot be reached is not an error of the lease: ``try_acquire`` answers "not
taken" (and logs the outage once), and the worker keeps asking every ``retry_interval`` until
the database is back, then takes its leases again on a new session, with no restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import time
from abc import ABC, abstractmethod
from typing import Any, Final

import psycopg

from cairn.errors import StoreUnavailableError
from cairn.observability.logging import get_logger
from cairn.sql.postgres_connect import connect
from cairn.store.urls import Backend, backend_of, postgres_conninfo, sqlite_path

_log = get_logger("cairn.leases")


def _lock_key(name: str) -> int:
    """A stable signed 64-bit key for ``pg_advisory_lock`` from a lease name."""
    digest = hashlib.blake2b(f"cairn.lease:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


#: The longest an owner trusts a lease without asking its backend (seconds), in
#: :meth:`Lease.still_held_within`. A PostgreSQL lease is lost when its session's connection
#: breaks; the lease's flag says so at once when psycopg noticed, the round trip only when the
#: connection died silently. The owners' own fences (a projection's checkpoint compare-and-set,
#: a saga row's version) keep a batch from being applied twice meanwhile.
CHECK_INTERVAL: Final = 2.0


class Lease(ABC):
    def __init__(self, name: str) -> None:
        self.name = name
        self.held = False
        self._asked_at = -CHECK_INTERVAL

    @abstractmethod
    async def try_acquire(self) -> bool:
        """Take the lease if nobody holds it; never blocks. True if held afterwards."""

    @abstractmethod
    async def still_held(self) -> bool:
        """Check (cheaply) that the lease was not lost, e.g. with its connection."""

    @abstractmethod
    async def release(self) -> None:
        """Give the lease up. Idempotent."""

    def doubt(self) -> None:
        """Make the next :meth:`still_held_within` ask the backend (e.g. after a failure that
        may have taken the lease's session with it)."""
        self._asked_at = -CHECK_INTERVAL

    async def still_held_within(self, seconds: float = CHECK_INTERVAL) -> bool:
        """:meth:`still_held`, asked of the backend at most once per ``seconds`` (a round trip
        on PostgreSQL, and a transaction: at one per batch it was a statement per order of
        ``cairn serve``); in between, the lease's own flag."""
        now = time.monotonic()
        if now - self._asked_at < seconds:
            return self.held
        self._asked_at = now
        return await self.still_held()

    async def acquire(self, retry_interval: float = 1.0) -> None:
        """Wait until the lease is ours."""
        while not await self.try_acquire():
            await asyncio.sleep(retry_interval)


class _MemoryLease(Lease):
    _held: set[str] = set()  # noqa: RUF012 - process-wide registry on purpose

    async def try_acquire(self) -> bool:
        if self.held:
            return True
        if self.name in self._held:
            return False
        self._held.add(self.name)
        self.held = True
        return True

    async def still_held(self) -> bool:
        return self.held

    async def release(self) -> None:
        if self.held:
            self._held.discard(self.name)
            self.held = False


class _FileLease(Lease):
    def __init__(self, name: str, path: str) -> None:
        super().__init__(name)
        self._path = path
        self._fd: int | None = None

    async def try_acquire(self) -> bool:
        if self.held:
            return True
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        self.held = True
        return True

    async def still_held(self) -> bool:
        return self.held

    async def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
        self.held = False


class _Session:
    """One dedicated PostgreSQL connection holding session advisory locks for many leases.

    Every statement on it runs under ``lock``: two leases' statements interleaving on one
    connection would read each other's results. Session locks are re-entrant per session, so a
    name is granted to one lease object at a time here (``holders``), as a second session would
    refuse it. If the connection breaks, the server has released every lock on it: all its
    leases are lost at once (``generation`` moves on, so each one's ``still_held()`` says so),
    and the next ``try_acquire`` connects again.
    """

    def __init__(self, conninfo: str, *, close_when_idle: bool) -> None:
        self._conninfo = conninfo
        self._close_when_idle = close_when_idle
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self.lock = asyncio.Lock()
        self.generation = 0
        self.holders: dict[int, _AdvisoryLease] = {}
        self._unreachable = False  # the last attempt to connect failed (logged once)

    def alive(self, generation: int) -> bool:
        conn = self._conn
        return generation == self.generation and conn is not None and not conn.closed

    async def _lost(self) -> None:
        """The connection broke: every lease on it is gone (the caller holds ``lock``)."""
        conn, self._conn = self._conn, None
        self.generation += 1
        for lease in self.holders.values():
            lease.held = False
        self.holders.clear()
        if conn is not None and not conn.closed:
            with contextlib.suppress(psycopg.Error):
                await conn.close()

    async def try_lock(self, lease: _AdvisoryLease) -> int | None:
        """Take ``lease``'s lock; the session generation it is held in, or None if refused."""
        key = _lock_key(lease.name)
        async with self.lock:
            if key in self.holders:
                return None  # another lease object of this process has the name
            if self._conn is None or self._conn.closed or self._conn.broken:
                await self._lost()
                if not await self._connect():
                    return None
            assert self._conn is not None
            try:
                cur = await self._conn.execute("SELECT pg_try_advisory_lock(%s)", (key,))
                row = await cur.fetchone()
            except psycopg.Error as exc:
                # The session is gone (and every lock on it): not taken now, asked again later.
                await self._lost()
                _log.warning("lease_session_lost", lease=lease.name, error=str(exc).strip())
                return None
            if not row or not row[0]:
                await self._close_if_idle()
                return None
            self.holders[key] = lease
            return self.generation

    async def _connect(self) -> bool:
        """Open the session; False (logged once per outage) when the database cannot be
        reached."""
        try:
            self._conn = await connect(self._conninfo, application_name="cairn-leases")
        except StoreUnavailableError as exc:
            if not self._unreachable:
                _log.warning("lease_session_unreachable", error=exc.message)
            self._unreachable = True
            return False
        if self._unreachable:
            _log.info("lease_session_reconnected")
        self._unreachable = False
        return True

    async def check(self, generation: int) -> bool:
        """Whether locks taken in ``generation`` are still held (one round trip)."""
        async with self.lock:
            if not self.alive(generation):
                return False
            assert self._conn is not None
            try:
                await self._conn.execute("SELECT 1")
            except psycopg.Error:
                await self._lost()
                return False
            return True

    async def unlock(self, lease: _AdvisoryLease, generation: int) -> None:
        key = _lock_key(lease.name)
        async with self.lock:
            if not self.alive(generation) or self.holders.get(key) is not lease:
                return
            del self.holders[key]
            assert self._conn is not None
            try:
                await self._conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
            except psycopg.Error:
                await self._lost()
                return
            await self._close_if_idle()

    async def _close_if_idle(self) -> None:
        if self._close_when_idle and not self.holders:
            conn, self._conn = self._conn, None
            if conn is not None and not conn.closed:
                with contextlib.suppress(psycopg.Error):
                    await conn.close()  # closing the session releases its advisory locks

    async def close(self) -> None:
        async with self.lock:
            await self._lost()


class _AdvisoryLease(Lease):
    def __init__(self, name: str, session: _Session) -> None:
        super().__init__(name)
        self._session = session
        self._generation = -1

    async def try_acquire(self) -> bool:
        if self.held and await self.still_held():
            return True
        await self.release()
        generation = await self._session.try_lock(self)
        if generation is None:
            return False
        self._generation = generation
        self.held = True
        return True

    async def still_held(self) -> bool:
        if not self.held or not await self._session.check(self._generation):
            self.held = False
            return False
        return True

    async def release(self) -> None:
        if self.held:
            self.held = False
            await self._session.unlock(self, self._generation)


class Leases:
    """The leases of one process on one database: on PostgreSQL they share one connection
    (one connection of the process's budget, however many projections and saga partitions it
    owns). ``close()`` ends that session, releasing every lease on it."""

    def __init__(self, database_url: str) -> None:
        self._url = database_url
        self._session: _Session | None = None
        if backend_of(database_url) is Backend.POSTGRES:
            self._session = _Session(postgres_conninfo(database_url), close_when_idle=False)

    def lease(self, name: str) -> Lease:
        """The lease named ``name`` (nothing connects until it is tried)."""
        if self._session is not None:
            return _AdvisoryLease(name, self._session)
        return lease_for(self._url, name)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def lease_for(database_url: str, name: str) -> Lease:
    """A lease named ``name`` in the database at ``database_url``, on a session of its own on
    PostgreSQL (closed when it is released): for one-off tools and tests; a process's workers
    share :class:`Leases`."""
    backend = backend_of(database_url)
    if backend is Backend.POSTGRES:
        return _AdvisoryLease(name, _Session(postgres_conninfo(database_url), close_when_idle=True))
    if backend is Backend.SQLITE and sqlite_path(database_url) != ":memory:":
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        return _FileLease(name, f"{sqlite_path(database_url)}.lease-{safe}")
    return _MemoryLease(name)
