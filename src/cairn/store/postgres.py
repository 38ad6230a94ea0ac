"""``postgresql://user@host:port/db``: the production backend (psycopg 3, async pool).

Gap safety (SPEC §1 "no skipped events") without a global write lock and without a timer; the
full argument is in ``docs/adr/0001-gap-free-global-order-on-postgresql.md``. In short:

* Writers (``cairn_append``, one server-side call per append): (1) take a transaction id
  first, (2) allocate positions from a sequence, (3) then insert the events in a
  subtransaction, whose xid is taken after (2): it is every row's ``xmin``, the row's
  ``horizon`` (``cairn_horizon``). Any transaction that allocated a smaller position already
  had an xid, and it is < horizon.
* Readers (``read_all``): fetch rows after ``after`` in position order together with the
  ``xmin`` of the same snapshot. A row that directly follows the previous one is returned. A row
  after a hole is returned only if ``horizon <= xmin``: every transaction that could own the hole
  has ended, so the hole is a rollback, never an event that will commit later. Otherwise the
  batch stops before the hole; a stuck writer holds readers back visibly (``horizon()``).

Live wake-up: no NOTIFY inside the append transaction (it takes a global lock at commit on
PostgreSQL 15 and would serialise writers again). After commit, appends flag a background task
that sends at most one ``pg_notify`` every couple of milliseconds; subscribers LISTEN on a
dedicated connection and still re-read every ``poll_interval * 20`` s as a safety net.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any, Final, Self
from urllib.parse import urlsplit

import psycopg
import psycopg.errors
from psycopg import pq
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from cairn.errors import (
    ConcurrencyError,
    InvalidEventError,
    SchemaMissingError,
    StoreUnavailableError,
    StreamDeletedError,
)
from cairn.sql.pool import HotConnections
from cairn.store.base import (
    ANY,
    STREAM_EXISTS,
    AppendResult,
    EventStore,
    ExpectedVersion,
    HorizonStatus,
    NewEvent,
    RecordedEvent,
    Snapshot,
    StreamInfo,
    encode_batch,
    encode_json,
    from_micros,
    paused_gc,
    recorded_as_sent,
    recorded_event,
)
from cairn.store.libpq_statement import LibpqStatement
from cairn.store.personal import KeyStore
from cairn.store.subject_keys import PostgresKeyStore
from cairn.store.upcasting import Upcasters
from cairn.store.urls import pool_size, postgres_conninfo
from cairn.waiting import wait_set

_loads = json.loads

CHANNEL: Final = "cairn_events"
#: Listener connections are dedicated: their last (and only) statement stays ``LISTEN …``.
_LISTENERS_SQL: Final = (
    "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database() "
    "AND state = 'idle' AND query = %s)"
)
CONNECT_TIMEOUT: Final = 5

#: Versioned schema: append only, never edit an applied entry.
MIGRATIONS: Final[Sequence[tuple[str, str]]] = (
    (
        "0001_events",
        """
        CREATE SEQUENCE IF NOT EXISTS events_position_seq AS bigint MINVALUE 1 START 1;
        CREATE TABLE IF NOT EXISTS events (
            position       bigint      PRIMARY KEY,
            stream_id      text        NOT NULL,
            version        bigint      NOT NULL,
            id             uuid        NOT NULL UNIQUE,
            type           text        NOT NULL,
            data           jsonb       NOT NULL,
            metadata       jsonb       NOT NULL,
            schema_version integer     NOT NULL DEFAULT 1,
            recorded_at    timestamptz NOT NULL,
            tx_id          xid8        NOT NULL,
            horizon        xid8        NOT NULL,
            CONSTRAINT events_stream_version UNIQUE (stream_id, version)
        );
        CREATE TABLE IF NOT EXISTS streams (
            stream_id       text    PRIMARY KEY,
            version         bigint  NOT NULL,
            deleted         boolean NOT NULL DEFAULT false,
            truncate_before bigint  NOT NULL DEFAULT 0,
            max_age_seconds double precision
        );
        """,
    ),
    (
        "0002_snapshots",
        """
        CREATE TABLE IF NOT EXISTS snapshots (
            stream_id   text        PRIMARY KEY,
            version     bigint      NOT NULL,
            state       jsonb       NOT NULL,
            schema      text        NOT NULL,
            recorded_at timestamptz NOT NULL
        );
        """,
    ),
    (
        "0003_append_function",
        # One round trip per append. plpgsql takes a fresh snapshot for every statement of a
        # VOLATILE function under READ COMMITTED, which is what step (3) relies on.
        # Error codes: CA409 version mismatch (DETAIL = actual), CA410 deleted stream,
        # CA400 an event id stored elsewhere.
        """
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
        """,
    ),
    (
        "0004_subject_keys",
        # Crypto-shredding keys (cairn.store.personal): forgetting a subject deletes its rows.
        """
        CREATE TABLE IF NOT EXISTS subject_keys (
            key_id     uuid        PRIMARY KEY,
            subject    text        NOT NULL UNIQUE,
            key        bytea       NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now()
        );
        """,
    ),
    (
        "0005_append_returns_events",
        # cairn_append of 0003, returning every position and the recorded_at, so that the
        # client can hand back the events as recorded without reading them again. A retry
        # returns the stored positions flagged, and the client reads the original events.
        # DROP first: a function's result type cannot be changed by CREATE OR REPLACE.
        """
        DROP FUNCTION IF EXISTS cairn_append(text, bigint, jsonb);
        CREATE FUNCTION cairn_append(
            p_stream text, p_expected bigint, p_events jsonb
        ) RETURNS TABLE (
            r_version bigint, r_positions bigint[], r_recorded_at timestamptz, r_retry boolean
        )
        LANGUAGE plpgsql VOLATILE AS $fn$
        DECLARE
            -- p_events: [{"i": id, "t": type, "v": schema version, "d": data, "m": metadata}]
            n integer := jsonb_array_length(p_events);
            v_first_id uuid := (p_events->0->>'i')::uuid;
            p_ids uuid[];
            v_first_stream text;
            v_first_version bigint;
            v_stored uuid[];
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
                SELECT array_agg(id ORDER BY version), array_agg(position ORDER BY version)
                  INTO v_stored, v_positions
                  FROM events
                 WHERE stream_id = p_stream AND version >= v_first_version
                   AND version < v_first_version + n;
                IF v_stored IS DISTINCT FROM p_ids THEN
                    RAISE EXCEPTION 'event ids of this batch are already stored at other places '
                        'in stream %; a retry must resend the same batch', p_stream
                        USING ERRCODE = 'CA400';
                END IF;
                -- The caller reads the ORIGINAL stored events at these positions.
                RETURN QUERY SELECT v_first_version + n - 1, v_positions, NULL::timestamptz, true;
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

            RETURN QUERY SELECT v_actual + n, v_positions, v_now, false;
        END
        $fn$;
        """,
    ),
    (
        "0006_cheaper_append",
        # Same contract and result columns as 0005, less server work per append (ADR 0001,
        # "Cost of an append"): a new stream's row is written once, at its final version,
        # inside the horizon subtransaction (no upsert, row lock and update); the retry check
        # of a new-stream append runs only when that row already exists; one plain result row
        # instead of a set.
        """
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
        """,
    ),
    (
        "0007_append_recordset",
        # cairn_append of 0006 with the batch unpacked by jsonb_to_recordset (one pass in C)
        # instead of jsonb_array_elements and five extractions per event (server CPU: no
        # measurable difference in later runs; ADR 0001). Same signature: CREATE OR REPLACE.
        """
        CREATE OR REPLACE FUNCTION cairn_append(
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
            SELECT r_positions[x.o], p_stream, v_actual + x.o, x.i, x.t, x.d, x.m, x.v, v_now,
                   v_top::text::xid8,
                   (v_top + ((v_sub::text::bigint - v_top % 4294967296 + 4294967296)
                             % 4294967296))::text::xid8
              FROM ROWS FROM (jsonb_to_recordset(p_events)
                              AS (i uuid, t text, v integer, d jsonb, m jsonb))
                   WITH ORDINALITY AS x(i, t, v, d, m, o);

            r_version := v_actual + n;
            r_recorded_at := v_now;
            r_retry := false;
        END
        $fn$;
        """,
    ),
    (
        "0008_append_without_stream_rows",
        # ADR 0001, "Cost of an append": the append no longer writes a streams row. A stream's
        # version is the highest version of its events; the unique index on (stream_id,
        # version) lets one writer of each version win (a writer must have seen version v
        # committed to write v + 1); the streams table keeps only lifecycle settings. The events
        # are inserted in the horizon subtransaction, so their own xmin is the horizon
        # (cairn_horizon); rows written before keep theirs in the horizon column. The retry
        # check runs only when the append does not fit, not on every append.
        """
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
        """,
    ),
)

#: ``data`` and ``metadata`` travel as one JSON array text, decoded by one ``json.loads`` per
#: row: half the decoder calls of two jsonb columns, which dominate a ``read_all`` scan.
_COLUMNS: Final = (
    "e.id, e.stream_id, e.type, '[' || e.data::text || ',' || e.metadata::text || ']', "
    "e.version, e.position, e.recorded_at, e.schema_version"
)


_XMIN: Final = (
    "SELECT x AS xmin, x::text::bigint AS xmin_number "
    "FROM pg_snapshot_xmin(pg_current_snapshot()) AS x"
)
#: Whether every transaction below the row's horizon has ended by the snapshot ``s`` (ADR 0001).
#: The horizon is above the row's top xid, so rows whose top xid is not below xmin fail without
#: computing it.
_PROVEN: Final = "(e.tx_id < s.xmin AND cairn_horizon(e.horizon, e.tx_id, e.xmin) <= s.xmin_number)"

#: A stream's version: the highest version of its events (0 for none; ADR 0001, 0008).
_STREAM_VERSION: Final = "SELECT COALESCE(max(version), 0) FROM events WHERE stream_id = %(sid)s"

#: Run through libpq directly (:mod:`cairn.store.libpq_statement`); every value comes back as
#: text, ``recorded_at`` as whole microseconds since the epoch (exact, whatever the DateStyle).
_APPEND: Final = LibpqStatement(
    "cairn_append",
    "SELECT r_version, r_positions, (extract(epoch FROM r_recorded_at) * 1000000)::bigint, "
    "r_retry FROM cairn_append($1, $2, $3::jsonb)",
)


def _appended(result: pq.abc.PGresult) -> tuple[int, list[int], datetime | None, bool]:
    """``_APPEND``'s text row: version, positions (``{7,8,9}``), recorded_at (none for a retry,
    whose caller reads the stored events instead) and whether it was a retry."""
    version, positions, micros, retry = (result.get_value(0, column) for column in range(4))
    assert version is not None
    assert positions is not None
    return (
        int(version),
        [int(p) for p in positions[1:-1].split(b",")],
        from_micros(int(micros)) if micros is not None else None,
        retry == b"t",
    )


_READ_ALL: Final = (
    f"SELECT {_COLUMNS} FROM events e WHERE e.position > %s ORDER BY e.position LIMIT %s"
)


def _dense_prefix(rows: Sequence[Sequence[Any]], after: int) -> int:
    """How many of ``rows`` (position in column 5) follow ``after`` without a hole."""
    for index, row in enumerate(rows):
        if row[5] != after + index + 1:
            return index
    return len(rows)


_READ_POSITIONS: Final = (
    f"SELECT {_COLUMNS} FROM events e WHERE e.position = ANY(%s) ORDER BY e.position"
)


def _decode(rows: Sequence[Sequence[Any]]) -> list[RecordedEvent]:
    """Rows → events. All payloads of the batch are parsed by ONE ``json.loads`` over the joined
    texts: the C scanner then does the work, not a Python-level call per event."""
    if not rows:
        return []
    with paused_gc():
        payloads = _loads("[" + ",".join([r[3] for r in rows]) + "]")
        return [
            recorded_event(r[0], r[1], r[2], p[0], p[1], r[4], r[5], r[6], r[7])
            for r, p in zip(rows, payloads, strict=True)
        ]


def describe(conninfo: str) -> str:
    """``host:port/db`` for messages (never the password)."""
    parts = urlsplit(conninfo)
    return f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path or '/'}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


async def connect(conninfo: str) -> psycopg.AsyncConnection[Any]:
    try:
        return await psycopg.AsyncConnection.connect(
            conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT
        )
    except psycopg.Error as exc:
        raise StoreUnavailableError(
            f"cannot connect to PostgreSQL at {describe(conninfo)}: {_first_line(exc)}"
        ) from None


async def applied_migrations(conn: psycopg.AsyncConnection[Any]) -> set[str]:
    cur = await conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL")
    row = await cur.fetchone()
    if row is None or not row[0]:
        return set()
    cur = await conn.execute("SELECT name FROM schema_migrations")
    return {r[0] for r in await cur.fetchall()}


async def apply_migrations(conn: psycopg.AsyncConnection[Any]) -> list[str]:
    """Apply what is missing, each migration in its own transaction; returns their names."""
    applied: list[str] = []
    for name, sql in MIGRATIONS:
        async with conn.transaction():
            # Two processes starting at once must not both run a migration: the advisory lock
            # queues the second until the first has committed, then it sees the row and skips.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('cairn.schema_migrations'))")
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            cur = await conn.execute("SELECT 1 FROM schema_migrations WHERE name = %s", (name,))
            if await cur.fetchone() is None:
                await conn.execute(sql.encode())
                await conn.execute("INSERT INTO schema_migrations (name) VALUES (%s)", (name,))
                applied.append(name)
    return applied


async def migrate(url: str) -> list[str]:
    """Apply the PostgreSQL schema at ``url``; returns the names of the migrations applied."""
    conn = await connect(postgres_conninfo(url))
    try:
        return await apply_migrations(conn)
    finally:
        await conn.close()


def _expected_code(expected: ExpectedVersion) -> int:
    if expected is ANY:
        return -1
    if expected is STREAM_EXISTS:
        return -2
    assert isinstance(expected, int)
    return expected


class PostgresEventStore(EventStore):
    poll_interval = 0.05
    #: Coalescing window of the post-commit wake-up: at most one NOTIFY per window.
    notify_interval = 0.002
    #: How often the notifier checks whether any process LISTENs at all.
    listener_check_interval = 0.5

    def __init__(
        self, conninfo: str, pool: AsyncConnectionPool, *, upcasters: Upcasters | None = None
    ) -> None:
        super().__init__(upcasters=upcasters)
        self.conninfo = conninfo
        self._connections = HotConnections(pool, purpose=f"at {describe(conninfo)}")
        self._wakeup = asyncio.Event()
        self._notify_pending = asyncio.Event()
        self._notifier: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._listener_ready: asyncio.Event | None = None
        self._proven_head = 0
        self._closed = False

    @classmethod
    async def open(
        cls, url: str, *, upcasters: Upcasters | None = None, migrate: bool = True
    ) -> Self:
        conninfo = postgres_conninfo(url)
        sizes = pool_size(url)
        conn = await connect(conninfo)
        try:
            if migrate:
                await apply_migrations(conn)
            elif {name for name, _ in MIGRATIONS} - await applied_migrations(conn):
                raise SchemaMissingError(
                    f"PostgreSQL database {describe(conninfo)} has no (or an outdated) cairn "
                    "schema; run `cairn migrate` or open with migrate=True"
                )
        finally:
            await conn.close()
        pool: AsyncConnectionPool = AsyncConnectionPool(
            conninfo,
            min_size=sizes.min,
            max_size=sizes.max,
            open=False,
            timeout=CONNECT_TIMEOUT * 2,
            kwargs={
                "autocommit": True,
                "connect_timeout": CONNECT_TIMEOUT,
                "options": "-c TimeZone=UTC",
            },
        )
        try:
            await pool.open(wait=True, timeout=CONNECT_TIMEOUT * 2)
        except PoolTimeout:
            await pool.close()
            raise StoreUnavailableError(
                f"cannot open a connection pool to PostgreSQL at {describe(conninfo)}"
            ) from None
        return cls(conninfo, pool, upcasters=upcasters)

    @property
    def pool_size(self) -> tuple[int, int]:
        """(minimum, maximum) connections of the pool, as the URL's pool parameters set them."""
        return self._connections.pool.min_size, self._connections.pool.max_size

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for task in (self._notifier, self._listener):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        await self._connections.close()

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """The most recently used connection first (:mod:`cairn.pgpool`)."""
        async with self._connections.connection() as conn:
            try:
                yield conn
            except psycopg.OperationalError as exc:
                raise StoreUnavailableError(
                    f"PostgreSQL at {describe(self.conninfo)}: {_first_line(exc)}"
                ) from None

    # -- writing ------------------------------------------------------------------------------

    async def _append(
        self, stream_id: str, events: list[NewEvent], expected: ExpectedVersion
    ) -> AppendResult:
        versions = [self.schema_version_for(e) for e in events]
        # The batch travels as ONE jsonb document, encoded by one encoder call: one parameter
        # to bind, and nothing per event on the client beyond building its dict.
        batch = encode_batch(
            [
                {"i": str(e.event_id), "t": e.type, "v": v, "d": e.data, "m": e.metadata or {}}
                for e, v in zip(events, versions, strict=True)
            ],
            events,
        )
        stored: list[RecordedEvent] = []
        try:
            # Not _connection(): its OperationalError translation must not hide the
            # psycopg.Error that _translate turns into the right typed error below.
            conn = await self._connections.checkout()
            try:
                params = (stream_id.encode(), b"%d" % _expected_code(expected), batch.encode())
                version, positions, recorded_at, retry = _appended(await _APPEND.run(conn, params))
                if retry:
                    # A retry: hand back the ORIGINAL stored events, not the resent ones.
                    cur = await conn.execute(_READ_POSITIONS, (positions,))
                    stored = _decode(await cur.fetchall())
            finally:
                await self._connections.checkin(conn)
        except psycopg.Error as exc:
            # A failed writer may have left a hole that readers wait on: wake them to re-check.
            self._signal()
            raise self._translate(exc, stream_id, expected) from None
        if retry:
            return AppendResult(version, positions[-1], tuple(stored))
        assert recorded_at is not None
        self._signal()
        # jsonb gives back the values we sent (key order aside, which a dict comparison
        # ignores), so our own text decodes to what a read would return; decoded on first use.
        return AppendResult(
            version,
            positions[-1],
            decode=lambda: recorded_as_sent(
                stream_id,
                events,
                [(doc["d"], doc["m"]) for doc in _loads(batch)],
                first_version=version - len(events) + 1,
                positions=positions,
                recorded_at=recorded_at,
                schema_versions=versions,
            ),
        )

    def _translate(
        self, exc: psycopg.Error, stream_id: str, expected: ExpectedVersion
    ) -> Exception:
        state = exc.sqlstate or ""
        diag = exc.diag
        if state == "CA409":
            return ConcurrencyError(stream_id, expected, int(diag.message_detail or 0))
        if state == "CA410":
            return StreamDeletedError(f"stream {stream_id!r} is deleted")
        if state == "CA400":
            return InvalidEventError(diag.message_primary or "event id already stored")
        if isinstance(exc, psycopg.errors.UniqueViolation):
            if diag.constraint_name == "events_stream_version":  # pragma: no cover - row lock
                return ConcurrencyError(stream_id, expected, -1)
            return InvalidEventError(
                f"an event id of this batch is already stored: {diag.message_detail}"
            )
        if isinstance(exc, psycopg.DataError):
            return InvalidEventError(f"event rejected by PostgreSQL: {_first_line(exc)}")
        if isinstance(exc, psycopg.OperationalError):
            return StoreUnavailableError(
                f"PostgreSQL at {describe(self.conninfo)}: {_first_line(exc)}"
            )
        return exc

    def _signal(self) -> None:
        """Wake in-process waiters now, and other processes through one coalesced NOTIFY."""
        self._wakeup.set()
        self._wakeup = asyncio.Event()
        if self._closed:
            return
        self._notify_pending.set()
        if self._notifier is None or self._notifier.done():
            self._notifier = asyncio.create_task(self._notify_loop())

    async def _notify_loop(self) -> None:
        listeners_checked = -1e9
        listeners = True
        loop = asyncio.get_running_loop()
        while not self._closed:
            await self._notify_pending.wait()
            self._notify_pending.clear()
            # After commit and outside any append transaction: NOTIFY inside the append would
            # take the global notify-queue lock at commit and serialise every writer again.
            check = loop.time() - listeners_checked > self.listener_check_interval
            if not (check or listeners):
                # Nobody listened at the last check: nothing to do until the next one.
                await asyncio.sleep(
                    max(listeners_checked + self.listener_check_interval - loop.time(), 0)
                )
                continue
            with contextlib.suppress(psycopg.Error, StoreUnavailableError):
                async with self._connection() as conn:
                    if check:
                        # A NOTIFY nobody listens to is a wasted statement per append window.
                        # A subscriber that starts between checks is served by its safety-net
                        # re-read (poll_interval * 20) until the next check.
                        cur = await conn.execute(_LISTENERS_SQL, (f"LISTEN {CHANNEL}",))
                        row = await cur.fetchone()
                        listeners = bool(row and row[0])
                        listeners_checked = loop.time()
                    if listeners:
                        await conn.execute("SELECT pg_notify(%s, '')", (CHANNEL,))
            await asyncio.sleep(self.notify_interval)

    # -- reading ------------------------------------------------------------------------------

    async def _read_stream(
        self, stream_id: str, from_version: int, to_version: int | None, until: datetime | None
    ) -> list[RecordedEvent]:
        # No horizon check here: the stream row lock makes versions of one stream commit in
        # order, so a stream read never sees version v+1 before v.
        async with self._connection() as conn:
            cur = await conn.execute(
                f"SELECT {_COLUMNS} FROM events e LEFT JOIN streams s USING (stream_id) "
                "WHERE e.stream_id = %(sid)s AND NOT COALESCE(s.deleted, false) "
                # The plain bound lets the (stream_id, version) index skip to from_version;
                # GREATEST(...) alone hides it from the planner and scans the whole stream.
                "AND e.version >= %(lo)s "
                "AND e.version >= GREATEST(%(lo)s, COALESCE(s.truncate_before, 0)) "
                "AND (%(hi)s::bigint IS NULL OR e.version <= %(hi)s::bigint) "
                "AND (%(until)s::timestamptz IS NULL OR e.recorded_at <= %(until)s::timestamptz) "
                "AND (s.max_age_seconds IS NULL "
                "     OR e.recorded_at >= now() - make_interval(secs => s.max_age_seconds)) "
                "ORDER BY e.version",
                {"sid": stream_id, "lo": from_version, "hi": to_version, "until": until},
                binary=True,
            )
            return _decode(await cur.fetchall())

    async def _read_all(self, after: int, limit: int) -> list[RecordedEvent]:
        events, _ = await self._read_all_proven(after, limit)
        return events

    async def _read_all_proven(self, after: int, limit: int) -> tuple[list[RecordedEvent], bool]:
        """Events after ``after`` up to the first unproven hole; also whether one stopped us.

        Events that follow ``after`` without a hole need no proof, so the page is read without
        one (the proof costs the server about a third of a scan's time). At a hole, the rest is
        read again with proofs, in a snapshot of its own: a hole still empty in a snapshot that
        proves the event after it stays empty (ADR 0001), whatever the first snapshot saw."""
        async with self._connection() as conn:
            cur = await conn.execute(_READ_ALL, (after, limit), binary=True)
            rows = await cur.fetchall()
        dense = _dense_prefix(rows, after)
        if dense == len(rows):
            return _decode(rows), False
        previous = rows[dense - 1][5] if dense else after
        rest, blocked = await self._read_all_with_proofs(previous, limit - dense)
        return _decode(rows[:dense]) + rest, blocked

    async def _read_all_with_proofs(
        self, after: int, limit: int
    ) -> tuple[list[RecordedEvent], bool]:
        async with self._connection() as conn:
            # xmin comes from the same snapshot as the rows (one statement): every xid below
            # it has finished, and the committed ones among them are visible in these rows.
            # Computed once in a CTE: in the select list it would be evaluated per row.
            cur = await conn.execute(
                f"WITH s AS MATERIALIZED ({_XMIN}) SELECT {_COLUMNS}, {_PROVEN} "
                "FROM events e, s WHERE e.position > %s ORDER BY e.position LIMIT %s",
                (after, limit),
                binary=True,
            )
            rows = await cur.fetchall()
        previous = after
        for index, row in enumerate(rows):
            if row[5] != previous + 1 and not row[8]:
                return _decode(rows[:index]), True
            previous = row[5]
        return _decode(rows), False

    async def subscribe(
        self, after: int = 0, *, batch_size: int = 1000
    ) -> AsyncIterator[RecordedEvent]:
        await self._ensure_listener()
        position = after
        while True:
            # Take the wake-up handle before reading, so an append that commits between the
            # read and the wait still wakes us.
            waiter = self._wakeup
            batch, blocked = await self._read_all_proven(position, batch_size)
            for event in await self.present(batch):
                yield event
                position = event.position
            if len(batch) < batch_size:
                # Blocked behind an open writer: its end may not be announced (a rollback by
                # another client), so look again soon.
                timeout = self.poll_interval if blocked else self.poll_interval * 20
                await wait_set(waiter, timeout)

    async def wait_for_append(self, after: int, timeout: float) -> None:
        await self._ensure_listener()
        waiter = self._wakeup
        if await self.head_position() > after:
            return
        await wait_set(waiter, timeout)

    async def _ensure_listener(self) -> None:
        if self._listener is not None and not self._listener.done():
            return
        self._listener_ready = asyncio.Event()
        self._listener = asyncio.create_task(self._listen())
        await wait_set(self._listener_ready, CONNECT_TIMEOUT)

    async def _listen(self) -> None:
        """A dedicated connection LISTENs for appends made by any process; reconnects on loss."""
        while not self._closed:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self.conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT
                )
                try:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    if self._listener_ready is not None:
                        self._listener_ready.set()
                    async for _ in conn.notifies():
                        self._wakeup.set()
                        self._wakeup = asyncio.Event()
                finally:
                    await conn.close()
            except psycopg.Error:
                if self._listener_ready is not None:
                    self._listener_ready.set()  # fall back to polling while reconnecting
                await asyncio.sleep(self.poll_interval * 20)

    async def head_position(self) -> int:
        # Walk positions only (no payloads) from the last proven head; the proven head only
        # ever moves forward, so this scans the recent tail.
        async with self._connection() as conn:
            cur = await conn.execute(
                f"WITH s AS MATERIALIZED ({_XMIN}) SELECT e.position, {_PROVEN} "
                "FROM events e, s WHERE e.position > %s ORDER BY e.position",
                (self._proven_head,),
            )
            rows = await cur.fetchall()
        head = self._proven_head
        for position, proven in rows:
            if position != head + 1 and not proven:
                break
            head = position
        self._proven_head = head
        return head

    async def horizon(self) -> HorizonStatus:
        head = await self.head_position()
        async with self._connection() as conn:
            cur = await conn.execute("SELECT count(*) FROM events WHERE position > %s", (head,))
            lag_row = await cur.fetchone()
            # Cluster-wide: xids are shared by every database of the server, so a writer open in
            # another database holds our readers back as well.
            cur = await conn.execute(
                "SELECT COALESCE(EXTRACT(epoch FROM clock_timestamp() - min(xact_start)), 0), "
                "count(*) FROM pg_stat_activity WHERE backend_xid IS NOT NULL "
                "AND pid <> pg_backend_pid()"
            )
            writer_row = await cur.fetchone()
        assert lag_row is not None
        assert writer_row is not None
        return HorizonStatus(
            head=head,
            lag_events=int(lag_row[0]),
            oldest_writer_seconds=float(writer_row[0]),
            details={"open_write_transactions": int(writer_row[1])},
        )

    async def stream_version(self, stream_id: str) -> int:
        async with self._connection() as conn:
            cur = await conn.execute(_STREAM_VERSION, {"sid": stream_id})
            row = await cur.fetchone()
        assert row is not None
        return int(row[0])

    async def _read_event(self, event_id: uuid.UUID | str) -> RecordedEvent | None:
        key = event_id if isinstance(event_id, uuid.UUID) else uuid.UUID(event_id)
        async with self._connection() as conn:
            cur = await conn.execute(f"SELECT {_COLUMNS} FROM events e WHERE e.id = %s", (key,))
            row = await cur.fetchone()
        return None if row is None else _decode([row])[0]

    def key_store(self) -> KeyStore:
        return PostgresKeyStore(self._connection)

    # -- snapshots ----------------------------------------------------------------------------

    async def save_snapshot(self, snapshot: Snapshot) -> None:
        state = encode_json(snapshot.state, "snapshot state")
        async with self._connection() as conn:
            # The latest version wins: an older snapshot saved late never replaces a newer one.
            await conn.execute(
                "INSERT INTO snapshots (stream_id, version, state, schema, recorded_at) "
                "VALUES (%s, %s, %s::jsonb, %s, %s) ON CONFLICT (stream_id) DO UPDATE SET "
                "version = excluded.version, state = excluded.state, schema = excluded.schema, "
                "recorded_at = excluded.recorded_at WHERE excluded.version >= snapshots.version",
                (
                    snapshot.stream_id,
                    snapshot.version,
                    state,
                    snapshot.schema,
                    snapshot.recorded_at,
                ),
            )

    async def load_snapshot(self, stream_id: str) -> Snapshot | None:
        async with self._connection() as conn:
            cur = await conn.execute(
                "SELECT stream_id, version, state, schema, recorded_at FROM snapshots "
                "WHERE stream_id = %s",
                (stream_id,),
            )
            row = await cur.fetchone()
        if row is None:
            return None
        return Snapshot(
            stream_id=row[0], version=row[1], state=row[2], schema=row[3], recorded_at=row[4]
        )

    async def delete_snapshots(self, stream_id: str | None = None) -> int:
        async with self._connection() as conn:
            if stream_id is None:
                cur = await conn.execute("DELETE FROM snapshots")
            else:
                cur = await conn.execute("DELETE FROM snapshots WHERE stream_id = %s", (stream_id,))
            return cur.rowcount

    # -- lifecycle of streams -----------------------------------------------------------------

    async def stream_info(self, stream_id: str) -> StreamInfo:
        # The version from the events, the settings from the stream's row if it has one.
        async with self._connection() as conn:
            cur = await conn.execute(
                f"SELECT ({_STREAM_VERSION}), COALESCE(s.deleted, false), "
                "COALESCE(s.truncate_before, 0), s.max_age_seconds "
                "FROM (SELECT) AS one LEFT JOIN streams s ON s.stream_id = %(sid)s",
                {"sid": stream_id},
            )
            row = await cur.fetchone()
        assert row is not None
        return StreamInfo(stream_id, *row)

    async def delete_stream(self, stream_id: str) -> None:
        async with self._connection() as conn:
            await conn.execute(
                "INSERT INTO streams (stream_id, deleted) VALUES (%s, true) "
                "ON CONFLICT (stream_id) DO UPDATE SET deleted = true",
                (stream_id,),
            )

    async def set_retention(
        self,
        stream_id: str,
        *,
        truncate_before: int | None = None,
        max_age_seconds: float | None = None,
    ) -> None:
        self.check_retention_allowed(stream_id)
        async with self._connection() as conn:
            await conn.execute(
                "INSERT INTO streams (stream_id, truncate_before, max_age_seconds) "
                "VALUES (%(sid)s, COALESCE(%(tb)s::bigint, 0), %(age)s::double precision) "
                "ON CONFLICT (stream_id) DO UPDATE SET "
                "truncate_before = COALESCE(%(tb)s::bigint, streams.truncate_before), "
                "max_age_seconds = COALESCE(%(age)s::double precision, streams.max_age_seconds)",
                {"sid": stream_id, "tb": truncate_before, "age": max_age_seconds},
            )
