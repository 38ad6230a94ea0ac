-- Save points of the read models (cairn.projections.save_points): one row per copy of a read
-- model's tables at a global position. The copies are tables named <base>_v<version>_at_<position>
-- (CREATE TABLE AS, made in the batch transaction that moved the checkpoint to that position);
-- time travel (cairn.projections.as_of) replays the log from the nearest one.
CREATE TABLE IF NOT EXISTS projection_save_points (
        projection TEXT NOT NULL,
        version BIGINT NOT NULL,
        position BIGINT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (projection, version, position));
