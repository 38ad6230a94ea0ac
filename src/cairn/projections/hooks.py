"""What the application passes in to act on a read model's committed changes.

The toolkit knows no read model's meaning: a cache of hot views (the order application's Redis
cache of order views, say) is the application's, handed to the engine per projection::

    ProjectionEngine(store, url, models, after_commit={"orders": order_cache})
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from cairn.projections.read_model import Key
from cairn.sql.database import Row

#: The rows one batch changed: (table base name, key) → the row as written, None if deleted.
ChangedRows = Mapping[tuple[str, Key], Row | None]


class AfterCommit(Protocol):
    """Called by a projection's runner after each *live* batch that changed rows has committed,
    before ``wait_for`` callers of that position are woken; never during a rebuild (its tables
    are not the ones queries read yet), never for a batch that changed nothing.

    ``version`` is the table version the rows were written to (a cache should key on it, so a
    rebuild's swap leaves every old entry behind). The rows are the batch's own: read, do not
    keep or change them. It should not raise: an exception is handled like a failed batch (the
    runner backs off and goes on from the position it has committed).
    """

    async def after_commit(self, version: int, changed: ChangedRows) -> None: ...
