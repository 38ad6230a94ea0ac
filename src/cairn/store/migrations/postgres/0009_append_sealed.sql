-- cairn_append for events sealed with subject keys (crypto-shredding) that a process took
-- from its cache of keys: the keys must still exist when the events are written. The KEY
-- SHARE lock on each key's row orders the append against a forget (DELETE): a forget
-- that committed first makes the append refuse (CA423, nothing written; the process
-- drops the keys and seals again), a forget that comes later waits for the append to
-- commit and then shreds its fields too.
CREATE OR REPLACE FUNCTION cairn_append_sealed(
    p_stream text, p_expected bigint, p_events jsonb, p_keys uuid[],
    OUT r_version bigint, OUT r_positions bigint[], OUT r_recorded_at timestamptz,
    OUT r_retry boolean
) LANGUAGE plpgsql VOLATILE
SET plan_cache_mode = force_generic_plan AS $fn$
BEGIN
    IF (SELECT count(*) FROM (SELECT FROM subject_keys WHERE key_id = ANY(p_keys)
                              FOR KEY SHARE) AS held) < cardinality(p_keys) THEN
        RAISE EXCEPTION 'a subject key of this append no longer exists'
            USING ERRCODE = 'CA423';
    END IF;
    SELECT a.r_version, a.r_positions, a.r_recorded_at, a.r_retry
      INTO r_version, r_positions, r_recorded_at, r_retry
      FROM cairn_append(p_stream, p_expected, p_events) AS a;
END
$fn$;
