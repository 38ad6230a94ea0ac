CREATE TABLE IF NOT EXISTS snapshots (
    stream_id   text        PRIMARY KEY,
    version     bigint      NOT NULL,
    state       jsonb       NOT NULL,
    schema      text        NOT NULL,
    recorded_at timestamptz NOT NULL
);
