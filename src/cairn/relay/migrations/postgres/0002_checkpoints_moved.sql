-- The relay now keeps its checkpoint in the one checkpoint table (cairn.sql.checkpoints, applied
-- before this set), named 'relay:<broker kind>:<topic>'. Copy what it published up to, so an
-- upgraded relay resumes there instead of publishing the whole log again. relay_checkpoints is
-- left in place, unused from now on (nothing reads or writes it; a later migration may drop it).
-- WHERE true: SQLite needs it to parse ON CONFLICT after INSERT … SELECT.
INSERT INTO checkpoints (name, position, updated_at)
SELECT 'relay:' || name, position, updated_at FROM relay_checkpoints WHERE true
ON CONFLICT (name) DO NOTHING;
