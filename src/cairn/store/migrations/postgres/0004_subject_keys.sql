-- Crypto-shredding keys (cairn.store.personal): forgetting a subject deletes its rows.

CREATE TABLE IF NOT EXISTS subject_keys (
    key_id     uuid        PRIMARY KEY,
    subject    text        NOT NULL UNIQUE,
    key        bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
