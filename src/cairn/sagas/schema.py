"""Where saga state lives: tables in the store's own database (through :mod:`cairn.sql`).

``saga_instances`` (one row per saga), ``saga_actions`` (its steps: commands to run, with
retries), ``saga_timers`` (:mod:`.deadlines`) and ``saga_log`` (what each saga received and
sent); how far each partition followed ``$all`` is a row of the one checkpoint table
(:mod:`cairn.sql.checkpoints`). The DDL is the ``.sql`` migrations in ``migrations/postgres``
and ``migrations/sqlite`` beside this module; every statement on these tables is in
:mod:`.repository`. Apply both sets, checkpoints first (the saga set copies the positions the
runner kept in ``saga_checkpoints`` before there was one checkpoint table)::

    await db.migrate(CHECKPOINTS, SAGAS)
"""

from __future__ import annotations

from typing import Final

from cairn.sql.database import Schema

SAGAS: Final = Schema("cairn.sagas", "sagas.")
