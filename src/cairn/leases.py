"""One owner at a time for a named piece of work (a projection, the relay, a saga partition).

PostgreSQL: a session advisory lock on a dedicated connection. If the owning process dies, the
server ends its session and the lock is released, so another worker takes over on its next
attempt (workers retry every ``retry_interval``): no expiry timer to tune and no clock skew.
SQLite: an exclusive ``flock`` on a file beside the database; the kernel releases it when the
process dies. Memory: a process-local registry (a memory store is single-process by nature).

An owner calls ``still_held()`` before committing work, so a worker that lost its connection
(and therefore its lock) stops instead of writing beside the new owner.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
from abc import ABC, abstractmethod
from typing import Any

import psycopg

from cairn.store.urls import Backend, backend_of, postgres_conninfo, sqlite_path


def _lock_key(name: str) -> int:
    """A stable signed 64-bit key for ``pg_advisory_lock`` from a lease name."""
    digest = hashlib.blake2b(f"cairn.lease:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class Lease(ABC):
    def __init__(self, name: str) -> None:
        self.name = name
        self.held = False

    @abstractmethod
    async def try_acquire(self) -> bool:
        """Take the lease if nobody holds it; never blocks. True if held afterwards."""

    @abstractmethod
    async def still_held(self) -> bool:
        """Check (cheaply) that the lease was not lost, e.g. with its connection."""

    @abstractmethod
    async def release(self) -> None:
        """Give the lease up. Idempotent."""

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


class _AdvisoryLease(Lease):
    def __init__(self, name: str, conninfo: str) -> None:
        super().__init__(name)
        self._conninfo = conninfo
        self._conn: psycopg.AsyncConnection[Any] | None = None

    async def try_acquire(self) -> bool:
        if self.held and await self.still_held():
            return True
        await self.release()
        conn = await psycopg.AsyncConnection.connect(
            self._conninfo, autocommit=True, application_name=f"cairn-lease:{self.name}"[:63]
        )
        cur = await conn.execute("SELECT pg_try_advisory_lock(%s)", (_lock_key(self.name),))
        row = await cur.fetchone()
        if not row or not row[0]:
            await conn.close()
            return False
        self._conn = conn
        self.held = True
        return True

    async def still_held(self) -> bool:
        if self._conn is None or self._conn.closed:
            self.held = False
            return False
        try:
            await self._conn.execute("SELECT 1")
        except psycopg.Error:
            self.held = False
            return False
        return True

    async def release(self) -> None:
        conn, self._conn = self._conn, None
        self.held = False
        if conn is not None and not conn.closed:
            with contextlib.suppress(psycopg.Error):
                await conn.close()  # closing the session releases the advisory lock


def lease_for(database_url: str, name: str) -> Lease:
    """A lease named ``name`` in the database at ``database_url``."""
    backend = backend_of(database_url)
    if backend is Backend.POSTGRES:
        return _AdvisoryLease(name, postgres_conninfo(database_url))
    if backend is Backend.SQLITE and sqlite_path(database_url) != ":memory:":
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        return _FileLease(name, f"{sqlite_path(database_url)}.lease-{safe}")
    return _MemoryLease(name)
