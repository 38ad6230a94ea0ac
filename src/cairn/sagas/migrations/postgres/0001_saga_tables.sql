-- The saga engine's tables (cairn.sagas): saga_instances (one row per saga), saga_actions (its
-- steps: commands to run, with retries), saga_timers (deadlines), saga_log (what each saga
-- received and sent) and saga_checkpoints (superseded by the one checkpoint table: see 0002).
-- Exactly the DDL the runner ran on open before migrations existed, so a database it created
-- upgrades cleanly (every statement is IF NOT EXISTS).
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
CREATE TABLE IF NOT EXISTS saga_log (
    id BIGSERIAL PRIMARY KEY,
    saga_id TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL,
    kind TEXT NOT NULL,
    step TEXT,
    message_type TEXT,
    message_id TEXT,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS saga_log_saga ON saga_log (saga_id, id);
