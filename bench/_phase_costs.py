"""What one phase of a saga benchmark cost: client CPU, server CPU, statements, transactions.

Shared by ``bench/sagas.py`` (cairn, in its own process) and ``bench/dbos_peer.py`` (DBOS, in a
child process), so both contenders are counted the same way:

* client CPU: this process's CPU time (every thread), ``time.process_time``;
* server CPU: ``utime + stime`` of the PostgreSQL backends serving the bench database, read
  from ``/proc/<pid>/stat`` (the server must run on this machine; a backend that ends during
  the phase takes its share with it, so pools must stay open until :meth:`Phase.stop`);
* transactions: the ``xact_commit`` delta of the database in ``pg_stat_database`` (a backend
  reports its counts when idle, at most once a second: hence the pause before each reading);
* statements: every ``execute`` of a psycopg cursor, sync or async, and every run of cairn's
  append statement (``cairn.store.libpq_statement``, which bypasses psycopg's cursors), in this
  process, minus BEGIN / COMMIT / ROLLBACK written by hand (psycopg's own and SQLAlchemy's are
  not statements the client sends through a cursor either), after :func:`count_statements` is
  installed. Before the thirteenth session the appends were left out (about 4 per saga).
"""

from __future__ import annotations

import asyncio
import functools
import os
import time
from dataclasses import dataclass
from typing import Any

import psycopg

from bench.common import PG_ADMIN_URL
from cairn.store.libpq_statement import LibpqStatement

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK")
#: Statements sent through psycopg cursors in this process (see :func:`count_statements`).
statements = [0]


def _counted(method: Any, many: bool) -> Any:
    @functools.wraps(method)
    def wrapper(self: Any, query: Any, params: Any = None, *args: Any, **kwargs: Any) -> Any:
        text = query if isinstance(query, str) else ""
        if text.strip().upper() not in _CONTROL:
            statements[0] += len(params) if many and params is not None else 1
        return method(self, query, params, *args, **kwargs)

    return wrapper


def _counted_run(run: Any) -> Any:
    @functools.wraps(run)
    async def wrapper(self: Any, conn: Any, params: Any) -> Any:
        statements[0] += 1
        return await run(self, conn, params)

    return wrapper


def count_statements() -> None:
    """Count every statement psycopg cursors and cairn's append statement run in this process
    (idempotent)."""
    for cls in (psycopg.Cursor, psycopg.AsyncCursor):
        if not getattr(cls, "_bench_counted", False):
            cls.execute = _counted(cls.execute, many=False)  # type: ignore[method-assign]
            cls.executemany = _counted(cls.executemany, many=True)  # type: ignore[method-assign]
            cls._bench_counted = True  # type: ignore[union-attr]
    if not getattr(LibpqStatement, "_bench_counted", False):
        LibpqStatement.run = _counted_run(LibpqStatement.run)  # type: ignore[method-assign]
        LibpqStatement._bench_counted = True  # type: ignore[attr-defined]


def _cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


async def _server_sample(database: str) -> tuple[dict[int, float], int]:
    """(CPU seconds of each backend on ``database``, its committed transactions so far)."""
    async with await psycopg.AsyncConnection.connect(PG_ADMIN_URL, autocommit=True) as conn:
        await conn.execute("SELECT pg_stat_clear_snapshot()")
        cur = await conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (database,))
        pids = [int(r[0]) for r in await cur.fetchall()]
        cur = await conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = %s", (database,)
        )
        row = await cur.fetchone()
    return {pid: _cpu_seconds(pid) for pid in pids}, int(row[0]) if row else 0


@dataclass(frozen=True)
class Costs:
    client_cpu: float
    server_cpu: float
    statements: int
    transactions: int

    def per(self, n: int) -> dict[str, float]:
        return {
            "cpu_ms": (self.client_cpu + self.server_cpu) * 1000 / n,
            "client_cpu_ms": self.client_cpu * 1000 / n,
            "server_cpu_ms": self.server_cpu * 1000 / n,
            "statements": self.statements / n,
            "transactions": self.transactions / n,
        }


#: How long an idle backend may keep its statistics before reporting them (PostgreSQL 15: 10 s).
STATS_DELAY = 10.5


class Phase:
    """``phase = await Phase.start(db)`` … ``costs = await phase.stop()``."""

    def __init__(self, database: str) -> None:
        self.database = database
        self._cpu: dict[int, float] = {}
        self._xacts = 0
        self._client = 0.0
        self._statements = 0

    @classmethod
    async def start(cls, database: str) -> Phase:
        phase = cls(database)
        await asyncio.sleep(STATS_DELAY)
        phase._cpu, phase._xacts = await _server_sample(database)
        phase._client = time.process_time()
        phase._statements = statements[0]
        return phase

    async def stop(self) -> Costs:
        client = time.process_time() - self._client
        counted = statements[0] - self._statements
        cpu, _ = await _server_sample(self.database)
        await asyncio.sleep(STATS_DELAY)
        _, xacts = await _server_sample(self.database)
        server = sum(max(0.0, seconds - self._cpu.get(pid, 0.0)) for pid, seconds in cpu.items())
        return Costs(client, server, counted, xacts - self._xacts)


def database_of(url: str) -> str:
    return url.rsplit("/", 1)[1].split("?", 1)[0]
