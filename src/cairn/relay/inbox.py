"""The consumer side: an inbox of processed message ids, so a redelivery has no second effect.

A broker delivers at least once (the relay re-publishes an unconfirmed tail; a consumer that
dies before acking gets the message again). The inbox makes the *effect* happen once: the
message id is recorded in the same database transaction as the effect, so either both commit
or neither does::

    async with await Inbox.open(database_url, consumer="order-counter") as inbox:
        applied = await inbox.process(message_id, effect)   # effect(tx) runs at most once
        await message.ack()                                  # ack after the commit, always

``effect`` receives the transaction (a :class:`cairn.sql.database.Tx`) and writes through
``tx.execute(sql, params)`` with ``?`` placeholders on both SQLite and PostgreSQL; rows read
through it are dicts. ``Inbox.open`` takes a database URL (the inbox then opens, and closes, a
Database of its own) or a :class:`~cairn.sql.database.Database` the caller shares with the rest
of its process. Table: ``inbox_messages(consumer, message_id, processed_at)``, from the relay's
migrations (:mod:`cairn.relay.schema`), applied on open if missing; ``prune`` forgets old ids.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from cairn.closing import Closing
from cairn.errors import UnsupportedStoreURL
from cairn.relay.schema import RELAY_SCHEMAS
from cairn.sql.database import Database, Dialect, Tx
from cairn.sql.factory import open_database
from cairn.store.urls import Backend, backend_of, sqlite_path

#: The time of processing as ISO 8601 UTC text with milliseconds, in each dialect.
_NOW = {
    Dialect.SQLITE: "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
    Dialect.POSTGRES: "to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')",
}

#: The transaction an effect runs in (the same one that records the message id).
InboxTransaction = Tx

Effect = Callable[[Tx], Awaitable[None]]


class Inbox(Closing):
    """Processed-message ids of one named consumer, in the consumer's database."""

    def __init__(self, db: Database, consumer: str, *, owns_db: bool = False) -> None:
        self.consumer = consumer
        self._db = db
        self._owns_db = owns_db

    @classmethod
    async def open(cls, database: str | Database, consumer: str) -> Inbox:
        """The inbox of ``consumer`` in the SQLite or PostgreSQL database at ``database`` (a
        URL, or the process's Database)."""
        if isinstance(database, str):
            backend = backend_of(database)
            durable = backend is Backend.POSTGRES or (
                backend is Backend.SQLITE and sqlite_path(database) != ":memory:"
            )
            if not durable:
                raise UnsupportedStoreURL(
                    f"the inbox needs a database that outlives the process, not {database!r}"
                )
            inbox = cls(open_database(database), consumer, owns_db=True)
        else:
            inbox = cls(database, consumer)
        try:
            await inbox._db.migrate(*RELAY_SCHEMAS)
        except BaseException:
            await inbox.close()
            raise
        return inbox

    async def process(self, message_id: str, effect: Effect) -> bool:
        """Run ``effect`` and record ``message_id`` atomically, unless it was processed before.

        Returns True if the effect ran now, False for a redelivery (nothing happened). If the
        effect raises, nothing is recorded and the error propagates (do not ack the message).
        """
        async with self._db.transaction() as tx:
            # A concurrent delivery of the same id blocks on the primary key until the first
            # transaction ends (PostgreSQL), or waits for the write lock (SQLite), then inserts
            # nothing: the effect cannot run twice.
            inserted = await tx.execute(
                "INSERT INTO inbox_messages (consumer, message_id, processed_at) "
                f"VALUES (?, ?, {_NOW[self._db.dialect]}) "
                "ON CONFLICT (consumer, message_id) DO NOTHING",
                (self.consumer, message_id),
            )
            if inserted == 0:
                return False  # a redelivery: commit the empty transaction, no effect
            await effect(tx)
            return True

    async def seen(self, message_id: str) -> bool:
        """Whether ``message_id`` was processed."""
        row = await self._db.fetchone(
            "SELECT 1 AS seen FROM inbox_messages WHERE consumer = ? AND message_id = ?",
            (self.consumer, message_id),
        )
        return row is not None

    async def prune(self, older_than: timedelta) -> int:
        """Forget the ids processed more than ``older_than`` ago; returns how many.

        Safe once the broker can no longer redeliver them (past its redelivery / duplicate
        window and the relay's unconfirmed tail); without it the table only grows.
        """
        cutoff = (datetime.now(UTC) - older_than).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        return await self._db.execute(
            "DELETE FROM inbox_messages WHERE consumer = ? AND processed_at < ?",
            (self.consumer, cutoff),
        )

    def transaction(self) -> contextlib.AbstractAsyncContextManager[Tx]:
        """A plain transaction on the inbox's database, recording nothing (schema set-up,
        reads of the consumer's own tables)."""
        return self._db.transaction()

    async def close(self) -> None:
        """Close the Database if the inbox opened it. Idempotent."""
        if self._owns_db:
            self._owns_db = False
            await self._db.close()
