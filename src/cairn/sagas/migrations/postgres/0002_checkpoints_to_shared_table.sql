-- The saga runner now keeps each partition's position in the one checkpoint table
-- (cairn.sql.checkpoints, migrated before this set), under the name it had in saga_checkpoints
-- ('saga:<type>:<p>of<partitions>': it already carries the 'saga:' kind prefix, so it is
-- copied as it is). Copy the positions saved so far, so every partition resumes exactly where
-- it stopped. A name already in checkpoints wins (ON CONFLICT DO NOTHING): it was saved by the
-- new runner, hence later.
--
-- saga_checkpoints stays in place, unused from now on (nothing reads or writes it); a later
-- migration may drop it once no deployment can roll back to a runner that reads it.
INSERT INTO checkpoints (name, position, updated_at)
SELECT name, position, to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')
FROM saga_checkpoints
ON CONFLICT (name) DO NOTHING;
