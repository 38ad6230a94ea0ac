-- A transition of sagas whose rows this process wrote last needs no read before its writes:
-- the runner keeps those rows in memory (cairn.sagas.instances) and sends this guard first,
-- pipelined with the writes and the COMMIT, so the whole transition is one round trip. It
-- locks each row (in the order given: the caller sorts by saga id, as lock_instances does) and
-- fails the transaction with SQLSTATE CA412 (cairn.errors.StaleRowError) if one is not at the
-- version expected: someone else wrote it meanwhile, and the caller retries reading it.
-- Version 0 expects no row (a saga this transition starts).
CREATE OR REPLACE FUNCTION cairn_saga_versions(p_ids TEXT[], p_versions INTEGER[])
RETURNS VOID LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    found INTEGER;
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_ids, 1), 0) LOOP
        found := NULL;
        SELECT version INTO found FROM saga_instances WHERE saga_id = p_ids[i] FOR UPDATE;
        IF found IS DISTINCT FROM nullif(p_versions[i], 0) THEN
            RAISE EXCEPTION 'saga % is at version %, not %', p_ids[i], coalesce(found, 0),
                p_versions[i] USING ERRCODE = 'CA412';
        END IF;
    END LOOP;
END
$fn$;
