-- One checkpoint table for every consumer of the log (projections, sagas, the relay): how far
-- each has processed $all. Names carry the consumer kind: 'projection:<name>:v<version>',
-- 'saga:<name>', 'relay:<broker>:<topic>'. Components copy their older checkpoints in with
-- their own migrations.
CREATE TABLE IF NOT EXISTS checkpoints (
    name TEXT PRIMARY KEY,
    position BIGINT NOT NULL,
    updated_at TEXT NOT NULL
);
