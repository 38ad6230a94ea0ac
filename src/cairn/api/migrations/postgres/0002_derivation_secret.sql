-- The secret that ids derived from an Idempotency-Key are keyed with (cairn.api.idempotency):
-- one random value per database, created on first use, shared by every API process on it, so
-- nobody who knows another principal's key can compute the order id it will create.
CREATE TABLE IF NOT EXISTS api_secret (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
