"""One connection budget per process: every PostgreSQL connection a cairn process holds.

``CAIRN_DB_MAX_CONNECTIONS`` (default 10) bounds the sum of

* the event store's pool (``store``): the API's command path (load, append) and the saga
  engine's commands and ``$all`` reads all go through it, so it gets the larger share;
* the SQL layer's pool (``sql``): read-model batches (live ones take turns; their transactions
  overlap only during catch-up), queries, saga state, checkpoints and idempotency records;
  statements are short and :class:`~cairn.sql.pool.HotConnections` keeps reusing the hot ones;
* the store's LISTEN connection (``listen``, one, dedicated: it waits on notifications);
* the lease connection (``leases``, one: every lease of the process is a session advisory lock
  on it, see :mod:`cairn.leases`).

Of what is left after ``listen`` and ``leases``, the SQL layer gets a quarter (at least one) and
the store the rest: 10 → store 6, sql 2, listen 1, leases 1. Measured in ``cairn serve`` at
160 orders/s (``bench serve_load``): the store's connections are the queue. Each order makes six
appends, and under load an append holds its connection 3-4 ms (the statement takes well under
one; the rest is the busy event loop noticing the answer and resuming the caller), so with 5
connections nearly every append waited for one (median 6-20 ms, most of a request's latency),
while the SQL layer's 3 were never all in use (1.3 busy on average: the live projections'
single turn, saga transitions, step outcomes). With 6 and 2, four alternating rounds against 5
and 3: the process's CPU per order 6.19 ms against 6.59 (waiting costs CPU too), HTTP p99
60-80 ms against 78-112, every round held. Both pools open with one connection
and grow on demand up to their share; :class:`~cairn.sql.pool.HotConnections` keeps what they
grew to, so a process whose start-up catch-up used them holds about its whole budget while
idle (8-9 of 10 measured for ``cairn serve``), never more. A ``postgresql://`` URL that sets
``pool_min``/``pool_max`` itself keeps them; the total then says what the process may hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from cairn.store.urls import POOL_PARAMETERS, Backend, backend_of, pool_size

__all__ = ["MIN_CONNECTIONS", "ConnectionBudget"]

#: One connection for each of the four users.
MIN_CONNECTIONS = 4
_DEDICATED = 2  # listen + leases
#: An idle pool keeps this many open.
POOL_MIN = 1


@dataclass(frozen=True, slots=True)
class ConnectionBudget:
    """How one process's PostgreSQL connections are shared out (see the module docstring)."""

    store: int
    sql: int
    listen: int = 1
    leases: int = 1

    @property
    def total(self) -> int:
        return self.store + self.sql + self.listen + self.leases

    @classmethod
    def split(cls, total: int) -> ConnectionBudget:
        """The default split of ``total`` connections."""
        if total < MIN_CONNECTIONS:
            raise ValueError(f"a process needs at least {MIN_CONNECTIONS} connections")
        shared = total - _DEDICATED
        sql = max(1, shared // 4)
        return cls(store=shared - sql, sql=sql)

    @classmethod
    def for_url(cls, database_url: str, total: int) -> ConnectionBudget:
        """The split for a store at ``database_url``: the URL's own ``pool_max`` wins."""
        budget = cls.split(total)
        given = dict(parse_qsl(urlsplit(database_url).query))
        if backend_of(database_url) is Backend.POSTGRES and "pool_max" in given:
            return cls(store=pool_size(database_url).max, sql=budget.sql)
        return budget

    def store_url(self, database_url: str) -> str:
        """``database_url`` with the store's share as its pool parameters (unless it sets them;
        only ``postgresql://`` URLs have a pool)."""
        if backend_of(database_url) is not Backend.POSTGRES:
            return database_url
        parts = urlsplit(database_url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        names = {k for k, _ in query}
        if names & set(POOL_PARAMETERS):
            return database_url
        query += [("pool_min", str(min(POOL_MIN, self.store))), ("pool_max", str(self.store))]
        return urlunsplit(parts._replace(query=urlencode(query)))

    def describe(self) -> str:
        """For the start-up log line: ``10 (store 6, sql 2, listen 1, leases 1)``."""
        return (
            f"{self.total} (store {self.store}, sql {self.sql}, "
            f"listen {self.listen}, leases {self.leases})"
        )
