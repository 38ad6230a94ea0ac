"""Where saga state lives: tables in the store's own database (through :mod:`cairn.sql`).

``saga_instances`` (one row per saga), ``saga_actions`` (its steps: commands to run, with
retries), ``saga_timers`` (:mod:`.deadlines`), ``saga_checkpoints`` (how far each partition
followed ``$all``) and ``saga_log`` (what each saga received and sent). Created when a runner is
built, if missing.
"""

from __future__ import annotations

from cairn.sql.database import Database, Dialect

_TABLES = """
CREATE TABLE IF NOT EXISTS saga_instances (
    saga_id TEXT PRIMARY KEY,
    saga_type TEXT NOT NULL,
    saga_key TEXT NOT NULL,
    partition_no INTEGER NOT NULL,
    status TEXT NOT NULL,
    step TEXT NOT NULL,
    state TEXT NOT NULL,
    correlation_id TEXT,
    version INTEGER NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS saga_instances_status ON saga_instances (status, updated_at);
CREATE TABLE IF NOT EXISTS saga_actions (
    action_id TEXT PRIMARY KEY,
    saga_id TEXT NOT NULL,
    saga_key TEXT NOT NULL,
    correlation_id TEXT,
    partition_no INTEGER NOT NULL,
    step TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    compensation INTEGER NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    max_attempts INTEGER NOT NULL,
    due_at DOUBLE PRECISION NOT NULL,
    claimed_by TEXT,
    causation_id TEXT,
    error TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS saga_actions_due ON saga_actions (status, due_at);
CREATE INDEX IF NOT EXISTS saga_actions_saga ON saga_actions (saga_id);
CREATE TABLE IF NOT EXISTS saga_timers (
    timer_id TEXT PRIMARY KEY,
    saga_id TEXT NOT NULL,
    partition_no INTEGER NOT NULL,
    kind TEXT NOT NULL,
    due_at DOUBLE PRECISION NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS saga_timers_due ON saga_timers (due_at);
CREATE TABLE IF NOT EXISTS saga_checkpoints (
    name TEXT PRIMARY KEY,
    position BIGINT NOT NULL
);
"""

_LOG_SQLITE = """
CREATE TABLE IF NOT EXISTS saga_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    saga_id TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL,
    kind TEXT NOT NULL,
    step TEXT,
    message_type TEXT,
    message_id TEXT,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS saga_log_saga ON saga_log (saga_id, id);
"""

_LOG_POSTGRES = _LOG_SQLITE.replace("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGSERIAL PRIMARY KEY")


async def create_saga_tables(db: Database) -> None:
    """Create the saga tables if missing (idempotent; safe with several processes starting)."""
    log = _LOG_POSTGRES if db.dialect is Dialect.POSTGRES else _LOG_SQLITE
    await db.ensure_schema((_TABLES + log).split(";"))
