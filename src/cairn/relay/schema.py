"""The relay's and the inbox's tables: ``.sql`` migrations in ``cairn/relay/migrations``.

:data:`RELAY` copies the relay's older checkpoints into the one checkpoint table, so it is
applied after :data:`~cairn.sql.checkpoints.CHECKPOINTS`; :data:`RELAY_SCHEMAS` is both, in
order (what a relay or an inbox migrates before first use, and what ``cairn migrate`` applies).
"""

from __future__ import annotations

from typing import Final

from cairn.sql.checkpoints import CHECKPOINTS
from cairn.sql.database import Schema

RELAY: Final = Schema("cairn.relay", "relay.")
RELAY_SCHEMAS: Final = (CHECKPOINTS, RELAY)
