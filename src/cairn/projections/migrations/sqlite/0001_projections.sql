-- The engine's own tables, exactly as cairn created them from code before its migrations were
-- .sql files (CREATE … IF NOT EXISTS: a database made then upgrades cleanly). The read-model
-- tables themselves are not here: they are versioned per rebuild (<base>_v<N>) and each read
-- model creates its own at run time (cairn.projections.schema.ensure_read_models).
CREATE TABLE IF NOT EXISTS projection_checkpoints (
        name TEXT NOT NULL,
        version INTEGER NOT NULL,
        position INTEGER NOT NULL,
        state TEXT NOT NULL,
        owner TEXT,
        errors INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (name, version));
CREATE TABLE IF NOT EXISTS read_model_versions (
        projection TEXT PRIMARY KEY,
        active_version INTEGER NOT NULL,
        rebuilding_version INTEGER,
        updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS projection_parked (
        id TEXT PRIMARY KEY,
        projection TEXT NOT NULL,
        version INTEGER NOT NULL,
        position INTEGER NOT NULL,
        event_id TEXT NOT NULL,
        event_type TEXT NOT NULL,
        stream_id TEXT NOT NULL,
        error TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        parked_at TEXT NOT NULL);
