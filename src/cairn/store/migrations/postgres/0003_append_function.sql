-- One round trip per append. plpgsql takes a fresh snapshot for every statement of a
-- VOLATILE function under READ COMMITTED, which is what step (3) relies on.
-- Error codes: CA409 version mismatch (DETAIL = actual), CA410 deleted stream,
-- CA400 an event id stored elsewhere.

CREATE OR REPLACE FUNCTION cairn_append(
    p_stream text, p_expected bigint, p_events jsonb
) RETURNS TABLE (r_version bigint, r_position bigint)
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    -- p_events: [{"i": id, "t": type, "v": schema version, "d": data, "m": metadata}]
    n integer := jsonb_array_length(p_events);
    v_first_id uuid := (p_events->0->>'i')::uuid;
    p_ids uuid[];
    v_first_stream text;
    v_first_version bigint;
    v_stored uuid[];
    v_last_position bigint;
    v_actual bigint;
    v_deleted boolean;
    v_positions bigint[];
    v_horizon xid8;
    v_sub xid;
    v_top bigint;
    v_now timestamptz := clock_timestamp();
BEGIN
    -- (1) Take an xid before any position is allocated: a reader proves a hole by
    -- seeing every xid below our horizon finished, so the allocating transaction must
    -- already be one of them.
    PERFORM pg_current_xact_id();

    -- Idempotent retry: the same ids at the same versions return the original result.
    SELECT stream_id, version INTO v_first_stream, v_first_version
      FROM events WHERE id = v_first_id;
    IF FOUND THEN
        p_ids := ARRAY(
            SELECT (x.e->>'i')::uuid
              FROM jsonb_array_elements(p_events) WITH ORDINALITY AS x(e, o) ORDER BY x.o);
        IF v_first_stream <> p_stream THEN
            RAISE EXCEPTION 'event id % is already stored in another stream', v_first_id
                USING ERRCODE = 'CA400';
        END IF;
        SELECT array_agg(id ORDER BY version), max(position) INTO v_stored, v_last_position
          FROM events
         WHERE stream_id = p_stream AND version >= v_first_version
           AND version < v_first_version + n;
        IF v_stored IS DISTINCT FROM p_ids THEN
            RAISE EXCEPTION 'event ids of this batch are already stored at other places '
                'in stream %; a retry must resend the same batch', p_stream
                USING ERRCODE = 'CA400';
        END IF;
        RETURN QUERY SELECT v_first_version + n - 1, v_last_position;
        RETURN;
    END IF;

    -- The stream row lock serialises writers of ONE stream (versions stay dense and the
    -- check below cannot race); writers of different streams never wait for each other.
    -- A new stream's row is created first so that concurrent creators queue on it
    -- (directly when the caller expects a new stream: one statement less).
    IF p_expected = 0 THEN
        INSERT INTO streams (stream_id, version) VALUES (p_stream, 0)
            ON CONFLICT (stream_id) DO NOTHING;
    END IF;
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
    IF (p_expected = -2 AND v_actual = 0) OR (p_expected >= 0 AND p_expected <> v_actual)
    THEN
        RAISE EXCEPTION 'stream % is at version %', p_stream, v_actual
            USING ERRCODE = 'CA409', DETAIL = v_actual::text;
    END IF;

    -- (2) Allocate the positions.
    SELECT array_agg(p ORDER BY p) INTO v_positions
      FROM (SELECT nextval('events_position_seq') AS p FROM generate_series(1, n)) s;

    -- (3) Read the xid counter AFTER (2): every transaction that allocated a smaller
    -- position had taken its xid before, so its xid is below this reading.
    -- pg_snapshot_xmax() is NOT such a reading: it is one past the latest COMPLETED
    -- xid, and a running transaction's xid may lie above it (ADR 0001). A fresh
    -- subtransaction xid is: xids come from one counter, so a subxid assigned now is
    -- above every xid assigned before. The block with an EXCEPTION clause is that
    -- subtransaction; the stream row update inside it gets the subxid as its xmin.
    BEGIN
        UPDATE streams SET version = v_actual + n WHERE stream_id = p_stream
            RETURNING xmin INTO v_sub;
    EXCEPTION WHEN OTHERS THEN
        RAISE;
    END;
    v_top := pg_current_xact_id()::text::bigint;
    -- Widen the 32-bit subxid to xid8 using our top xid8 (the subxid is just above it).
    v_horizon := (v_top + ((v_sub::text::bigint - v_top % 4294967296 + 4294967296)
                           % 4294967296))::text::xid8;

    INSERT INTO events (position, stream_id, version, id, type, data, metadata,
                        schema_version, recorded_at, tx_id, horizon)
    SELECT v_positions[x.o], p_stream, v_actual + x.o, (x.e->>'i')::uuid, x.e->>'t',
           x.e->'d', x.e->'m', (x.e->>'v')::integer, v_now, v_top::text::xid8, v_horizon
      FROM jsonb_array_elements(p_events) WITH ORDINALITY AS x(e, o);

    RETURN QUERY SELECT v_actual + n, v_positions[n];
END
$fn$;
