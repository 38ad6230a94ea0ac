CREATE SEQUENCE IF NOT EXISTS events_position_seq AS bigint MINVALUE 1 START 1;
CREATE TABLE IF NOT EXISTS events (
    position       bigint      PRIMARY KEY,
    stream_id      text        NOT NULL,
    version        bigint      NOT NULL,
    id             uuid        NOT NULL UNIQUE,
    type           text        NOT NULL,
    data           jsonb       NOT NULL,
    metadata       jsonb       NOT NULL,
    schema_version integer     NOT NULL DEFAULT 1,
    recorded_at    timestamptz NOT NULL,
    tx_id          xid8        NOT NULL,
    horizon        xid8        NOT NULL,
    CONSTRAINT events_stream_version UNIQUE (stream_id, version)
);
CREATE TABLE IF NOT EXISTS streams (
    stream_id       text    PRIMARY KEY,
    version         bigint  NOT NULL,
    deleted         boolean NOT NULL DEFAULT false,
    truncate_before bigint  NOT NULL DEFAULT 0,
    max_age_seconds double precision
);
