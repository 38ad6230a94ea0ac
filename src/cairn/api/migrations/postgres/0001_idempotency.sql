-- Idempotency-Key records (cairn.api.idempotency), exactly as cairn created them on first use
-- before this migration existed (so a database that has the table upgrades cleanly).
CREATE TABLE IF NOT EXISTS api_idempotency (
    principal TEXT NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status INTEGER NOT NULL,
    body BYTEA NOT NULL,
    headers JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (principal, key)
);
