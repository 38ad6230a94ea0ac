-- A projection's position moves to the one checkpoint table (cairn.sql.checkpoints, applied
-- before this set), named 'projection:<name>:v<version>': an upgraded database resumes where it
-- was. What stays is the projection's status (state, owner, errors, last_error), so the table
-- is renamed for what it holds and loses its position column. The rename also makes a process
-- of the previous version fail loudly on this database instead of resuming from a position that
-- no longer moves (and applying batches a second time).
-- (WHERE true: SQLite needs a WHERE to parse ON CONFLICT after INSERT … SELECT.)
INSERT INTO checkpoints (name, position, updated_at)
SELECT 'projection:' || name || ':v' || version, position, updated_at FROM projection_checkpoints
WHERE true
ON CONFLICT DO NOTHING;
ALTER TABLE projection_checkpoints RENAME TO projection_status;
ALTER TABLE projection_status DROP COLUMN position;
