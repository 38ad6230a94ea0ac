-- Idempotency-Key records (cairn.api.idempotency), exactly as cairn created them on first use
-- before this migration existed (so a database that has the table upgrades cleanly).
CREATE TABLE IF NOT EXISTS api_idempotency (
    principal TEXT NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status INTEGER NOT NULL,
    body BLOB NOT NULL,
    headers TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (principal, key)
);
