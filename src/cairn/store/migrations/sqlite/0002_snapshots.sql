CREATE TABLE IF NOT EXISTS snapshots (
    stream_id   TEXT    PRIMARY KEY,
    version     INTEGER NOT NULL,
    state       TEXT    NOT NULL,
    schema      TEXT    NOT NULL,
    recorded_at INTEGER NOT NULL
);
