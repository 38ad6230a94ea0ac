-- Same contract and result columns as 0005, less server work per append (ADR 0001,
-- "Cost of an append"): a new stream's row is written once, at its final version,
-- inside the horizon subtransaction (no upsert, row lock and update); the retry check
-- of a new-stream append runs only when that row already exists; one plain result row
-- instead of a set.

DROP FUNCTION IF EXISTS cairn_append(text, bigint, jsonb);
CREATE FUNCTION cairn_append_retried(
    p_stream text, p_events jsonb, p_first_stream text, p_first_version bigint,
    OUT r_version bigint, OUT r_positions bigint[], OUT r_recorded_at timestamptz,
    OUT r_retry boolean
) LANGUAGE plpgsql STABLE AS $fn$
-- The first event id is stored: a retry of the same batch returns the original result
-- (the caller reads the stored events at r_positions), anything else is a mistake.
DECLARE
    n integer := jsonb_array_length(p_events);
    v_stored uuid[];
BEGIN
    IF p_first_stream <> p_stream THEN
        RAISE EXCEPTION 'event id % is already stored in another stream',
            p_events->0->>'i' USING ERRCODE = 'CA400';
    END IF;
    SELECT array_agg(id ORDER BY version), array_agg(position ORDER BY version)
      INTO v_stored, r_positions
      FROM events
     WHERE stream_id = p_stream AND version >= p_first_version
       AND version < p_first_version + n;
    IF v_stored IS DISTINCT FROM ARRAY(
            SELECT (x.e->>'i')::uuid
              FROM jsonb_array_elements(p_events) WITH ORDINALITY AS x(e, o)
             ORDER BY x.o) THEN
        RAISE EXCEPTION 'event ids of this batch are already stored at other places '
            'in stream %; a retry must resend the same batch', p_stream
            USING ERRCODE = 'CA400';
    END IF;
    r_version := p_first_version + n - 1;
    r_retry := true;
END
$fn$;

CREATE FUNCTION cairn_append(
    p_stream text, p_expected bigint, p_events jsonb,
    OUT r_version bigint, OUT r_positions bigint[], OUT r_recorded_at timestamptz,
    OUT r_retry boolean
) LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    -- p_events: [{"i": id, "t": type, "v": schema version, "d": data, "m": metadata}]
    n integer := jsonb_array_length(p_events);
    -- (1) Take an xid before any position is allocated: a reader proves a hole by
    -- seeing every xid below our horizon finished, so the allocating transaction must
    -- already be one of them.
    v_top bigint := pg_current_xact_id()::text::bigint;
    v_now timestamptz := clock_timestamp();
    v_first_id uuid := (p_events->0->>'i')::uuid;
    v_first_stream text;
    v_first_version bigint;
    v_actual bigint;
    v_deleted boolean;
    v_sub xid;
    v_exists boolean;
BEGIN
    IF p_expected <> 0 THEN
        -- Idempotent retry: the same ids at the same versions return the original.
        SELECT stream_id, version INTO v_first_stream, v_first_version
          FROM events WHERE id = v_first_id;
        IF FOUND THEN
            SELECT * INTO r_version, r_positions, r_recorded_at, r_retry
              FROM cairn_append_retried(p_stream, p_events, v_first_stream,
                                        v_first_version);
            RETURN;
        END IF;
        -- The stream row lock serialises writers of ONE stream (versions stay dense
        -- and the check below cannot race); writers of different streams never wait
        -- for each other.
        SELECT version, deleted INTO v_actual, v_deleted
          FROM streams WHERE stream_id = p_stream FOR UPDATE;
        IF NOT FOUND THEN
            INSERT INTO streams (stream_id, version) VALUES (p_stream, 0)
                ON CONFLICT (stream_id) DO NOTHING;
            SELECT version, deleted INTO v_actual, v_deleted
              FROM streams WHERE stream_id = p_stream FOR UPDATE;
        END IF;
        IF v_deleted THEN
            RAISE EXCEPTION 'stream % is deleted', p_stream USING ERRCODE = 'CA410';
        END IF;
        IF (p_expected = -2 AND v_actual = 0)
           OR (p_expected > 0 AND p_expected <> v_actual) THEN
            RAISE EXCEPTION 'stream % is at version %', p_stream, v_actual
                USING ERRCODE = 'CA409', DETAIL = v_actual::text;
        END IF;
    END IF;

    -- (2) Allocate the positions (ascending; not necessarily contiguous), then (3) read
    -- the xid counter: every transaction that allocated a smaller position had taken
    -- its xid before, so its xid is below this reading. pg_snapshot_xmax() is NOT
    -- such a reading: it is one past the latest COMPLETED xid, and a running
    -- transaction's xid may lie above it (ADR 0001). A fresh subtransaction xid is:
    -- xids come from one counter, so a subxid assigned now is above every xid
    -- assigned before. The block with an EXCEPTION clause is that subtransaction;
    -- the stream row written inside it gets the subxid as its xmin.
    IF p_expected = 0 THEN
        -- A new stream: its row is created in (3), at its final version. An existing
        -- row is seen first, so a conflict with committed history allocates nothing.
        PERFORM FROM streams WHERE stream_id = p_stream;
        v_exists := FOUND;
        IF NOT v_exists THEN
            r_positions := ARRAY(
                SELECT nextval('events_position_seq') FROM generate_series(1, n));
            BEGIN
                INSERT INTO streams (stream_id, version) VALUES (p_stream, n)
                    RETURNING xmin INTO v_sub;
            EXCEPTION WHEN unique_violation THEN
                -- A concurrent creator: we queued on its row and it committed. Our
                -- positions become a hole, like those of any failed append.
                v_exists := true;
            END;
        END IF;
        IF v_exists THEN
            -- A retry of the stream's first append, or a conflict.
            SELECT stream_id, version INTO v_first_stream, v_first_version
              FROM events WHERE id = v_first_id;
            IF FOUND THEN
                SELECT * INTO r_version, r_positions, r_recorded_at, r_retry
                  FROM cairn_append_retried(p_stream, p_events, v_first_stream,
                                            v_first_version);
                RETURN;
            END IF;
            SELECT version, deleted INTO v_actual, v_deleted
              FROM streams WHERE stream_id = p_stream;
            IF v_deleted THEN
                RAISE EXCEPTION 'stream % is deleted', p_stream USING ERRCODE = 'CA410';
            END IF;
            RAISE EXCEPTION 'stream % is at version %', p_stream, v_actual
                USING ERRCODE = 'CA409', DETAIL = v_actual::text;
        END IF;
        v_actual := 0;
    ELSE
        r_positions := ARRAY(
            SELECT nextval('events_position_seq') FROM generate_series(1, n));
        BEGIN
            UPDATE streams SET version = v_actual + n WHERE stream_id = p_stream
                RETURNING xmin INTO v_sub;
        EXCEPTION WHEN OTHERS THEN
            RAISE;
        END;
    END IF;

    -- An id stored in another stream fails here on the unique index of events.id.
    -- horizon: the 32-bit subxid widened to xid8 with our top xid's epoch (the subxid
    -- is just above the top xid).
    INSERT INTO events (position, stream_id, version, id, type, data, metadata,
                        schema_version, recorded_at, tx_id, horizon)
    SELECT r_positions[x.o], p_stream, v_actual + x.o, (x.e->>'i')::uuid, x.e->>'t',
           x.e->'d', x.e->'m', (x.e->>'v')::integer, v_now, v_top::text::xid8,
           (v_top + ((v_sub::text::bigint - v_top % 4294967296 + 4294967296)
                     % 4294967296))::text::xid8
      FROM jsonb_array_elements(p_events) WITH ORDINALITY AS x(e, o);

    r_version := v_actual + n;
    r_recorded_at := v_now;
    r_retry := false;
END
$fn$;
