-- recorded_at is stored as integer microseconds since the epoch (UTC), so `until`
-- compares exactly.

CREATE TABLE IF NOT EXISTS events (
    position       INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT    NOT NULL UNIQUE,
    stream_id      TEXT    NOT NULL,
    version        INTEGER NOT NULL,
    type           TEXT    NOT NULL,
    data           TEXT    NOT NULL,
    metadata       TEXT    NOT NULL,
    schema_version INTEGER NOT NULL DEFAULT 1,
    recorded_at    INTEGER NOT NULL,
    UNIQUE (stream_id, version)
);
CREATE TABLE IF NOT EXISTS streams (
    stream_id       TEXT    PRIMARY KEY,
    version         INTEGER NOT NULL,
    deleted         INTEGER NOT NULL DEFAULT 0,
    truncate_before INTEGER NOT NULL DEFAULT 0,
    max_age_seconds REAL
);
