-- ADR 0001, "Cost of an append": the append no longer writes a streams row. A stream's
-- version is the highest version of its events; the unique index on (stream_id,
-- version) lets one writer of each version win (a writer must have seen version v
-- committed to write v + 1); the streams table keeps only lifecycle settings. The events
-- are inserted in the horizon subtransaction, so their own xmin is the horizon
-- (cairn_horizon); rows written before keep theirs in the horizon column. The retry
-- check runs only when the append does not fit, not on every append.

ALTER TABLE events ALTER COLUMN horizon DROP NOT NULL;
ALTER TABLE streams DROP COLUMN version;

-- The horizon of a row as a number: the stored one, or else the row's xmin (the
-- subtransaction xid of its append, 32 bits) widened with the epoch of its top xid
-- (the subtransaction xid is just above it). A number, not xid8: readers compare it
-- per row, and bigint arithmetic and comparison cost less than a cast back.
CREATE FUNCTION cairn_horizon(p_horizon xid8, p_tx_id xid8, p_xmin xid)
RETURNS bigint LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT COALESCE(p_horizon::text::bigint, p_tx_id::text::bigint
        + ((p_xmin::text::bigint - p_tx_id::text::bigint % 4294967296 + 4294967296)
           % 4294967296))
$$;

-- The original result of this batch if it is stored already (r_retry), else nothing.
CREATE FUNCTION cairn_stored_batch(
    p_stream text, p_events jsonb,
    OUT r_version bigint, OUT r_positions bigint[], OUT r_recorded_at timestamptz,
    OUT r_retry boolean
) LANGUAGE plpgsql STABLE AS $fn$
DECLARE
    v_stream text;
    v_version bigint;
BEGIN
    SELECT stream_id, version INTO v_stream, v_version
      FROM events WHERE id = (p_events->0->>'i')::uuid;
    IF NOT FOUND THEN
        r_retry := false;
        RETURN;
    END IF;
    SELECT * INTO r_version, r_positions, r_recorded_at, r_retry
      FROM cairn_append_retried(p_stream, p_events, v_stream, v_version);
END
$fn$;

CREATE OR REPLACE FUNCTION cairn_append(
    p_stream text, p_expected bigint, p_events jsonb,
    OUT r_version bigint, OUT r_positions bigint[], OUT r_recorded_at timestamptz,
    OUT r_retry boolean
) LANGUAGE plpgsql VOLATILE
-- A custom plan per call costs more than it saves: plan once per connection.
SET plan_cache_mode = force_generic_plan AS $fn$
DECLARE
    -- p_events: [{"i": id, "t": type, "v": schema version, "d": data, "m": metadata}]
    n integer := jsonb_array_length(p_events);
    -- (1) Take an xid before any position is allocated: a reader proves a hole by
    -- seeing every xid below the horizon of a later event finished, so the transaction
    -- that allocated the hole must already be one of them.
    v_top xid8 := pg_current_xact_id();
    v_now timestamptz := clock_timestamp();
    v_actual bigint;
    v_deleted boolean;
    v_constraint text;
BEGIN
    -- (2) The stream's version and whether it is soft-deleted, in one statement.
    SELECT (SELECT COALESCE(max(version), 0) FROM events WHERE stream_id = p_stream),
           EXISTS (SELECT FROM streams WHERE stream_id = p_stream AND deleted)
      INTO v_actual, v_deleted;
    IF v_deleted OR p_expected = -1 OR (p_expected = -2 AND v_actual = 0)
       OR (p_expected >= 0 AND p_expected <> v_actual) THEN
        -- Perhaps this very batch is stored already (always asked for ANY, which has
        -- no version to tell): a retry returns the original result. Asked before
        -- anything is allocated, so a retry or a refusal leaves no hole.
        SELECT * INTO r_version, r_positions, r_recorded_at, r_retry
          FROM cairn_stored_batch(p_stream, p_events);
        IF r_retry THEN
            RETURN;
        END IF;
        IF v_deleted THEN
            RAISE EXCEPTION 'stream % is deleted', p_stream USING ERRCODE = 'CA410';
        END IF;
        IF p_expected <> -1 THEN
            RAISE EXCEPTION 'stream % is at version %', p_stream, v_actual
                USING ERRCODE = 'CA409', DETAIL = v_actual::text;
        END IF;
    END IF;
    LOOP
        -- (3) Allocate the positions (ascending, not necessarily contiguous).
        FOR k IN 1 .. n LOOP
            r_positions[k] := nextval('events_position_seq');
        END LOOP;
        -- (4) Insert in a subtransaction (the block with an EXCEPTION clause): its xid
        -- is taken at the first row, AFTER (3), and is every row's xmin, the horizon.
        -- One writer of each version wins on the unique (stream_id, version) index;
        -- the others wait on its entry and fail here once it commits.
        BEGIN
            INSERT INTO events (position, stream_id, version, id, type, data, metadata,
                                schema_version, recorded_at, tx_id)
            SELECT r_positions[x.o], p_stream, v_actual + x.o, x.i, x.t, x.d, x.m, x.v,
                   v_now, v_top
              FROM ROWS FROM (jsonb_to_recordset(p_events)
                              AS (i uuid, t text, v integer, d jsonb, m jsonb))
                   WITH ORDINALITY AS x(i, t, v, d, m, o);
            EXIT;
        EXCEPTION WHEN unique_violation THEN
            -- The positions of (3) become a hole, like those of any failed append.
            GET STACKED DIAGNOSTICS v_constraint = CONSTRAINT_NAME;
        END;
        -- A race lost: to a concurrent writer of these versions, or to the original
        -- of this very batch, in flight when we looked.
        SELECT * INTO r_version, r_positions, r_recorded_at, r_retry
          FROM cairn_stored_batch(p_stream, p_events);
        IF r_retry THEN
            RETURN;
        END IF;
        IF v_constraint <> 'events_stream_version' THEN
            RAISE EXCEPTION 'an event id of this batch is already stored'
                USING ERRCODE = 'CA400';
        END IF;
        SELECT COALESCE(max(version), 0) INTO v_actual
          FROM events WHERE stream_id = p_stream;
        IF p_expected <> -1 AND (p_expected <> -2 OR v_actual = 0) THEN
            RAISE EXCEPTION 'stream % is at version %', p_stream, v_actual
                USING ERRCODE = 'CA409', DETAIL = v_actual::text;
        END IF;
        -- ANY, or STREAM_EXISTS of a stream that exists: go again at the new version.
    END LOOP;
    r_version := v_actual + n;
    r_recorded_at := v_now;
    r_retry := false;
END
$fn$;
