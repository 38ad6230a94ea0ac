-- Crypto-shredding keys (cairn.store.personal): forgetting a subject deletes its rows.

CREATE TABLE IF NOT EXISTS subject_keys (
    key_id     TEXT PRIMARY KEY,
    subject    TEXT NOT NULL UNIQUE,
    key        BLOB NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
