-- The saga runner now keeps each partition's position in the one checkpoint table
-- (cairn.sql.checkpoints, migrated before this set), under the name it had in saga_checkpoints
-- ('saga:<type>:<p>of<partitions>': it already carries the 'saga:' kind prefix, so it is
-- copied as it is). Copy the positions saved so far, so every partition resumes exactly where
-- it stopped. A name already in checkpoints wins (ON CONFLICT DO NOTHING): it was saved by the
-- new runner, hence later.
--
-- saga_checkpoints stays in place, unused from now on (nothing reads or writes it); a later
-- migration may drop it once no deployment can roll back to a runner that reads it.
--
-- "WHERE true": SQLite needs a WHERE in an INSERT … SELECT that has an upsert clause, or it
-- reads ON CONFLICT as the start of a join constraint.
INSERT INTO checkpoints (name, position, updated_at)
SELECT name, position, strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now')
FROM saga_checkpoints WHERE true
ON CONFLICT (name) DO NOTHING;
