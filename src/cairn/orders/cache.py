"""Optional Redis cache of hot order views; every answer stays correct without it.

The order application's: the projection engine calls it after each live commit of the ``orders``
projection (it is that projection's :class:`~cairn.projections.hooks.AfterCommit` hook), and
:class:`~cairn.orders.views.ReadModelQueries` reads and fills it.

Keys carry the table version (``cairn:order:v3:<id>``), so a rebuild's swap invalidates them all.
Readers fill a missing key with ``SET NX`` only; the projection overwrites keys after each commit
(never during a rebuild). So a reader that read an older row cannot overwrite a newer value the
projection wrote. If Redis fails, the cache switches itself off for a few seconds and every
call falls through to SQL; the TTL bounds staleness after an invalidation that could not reach it.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterable, Sequence
from typing import Any

from cairn.orders.read_models.orders import ORDERS, public_order
from cairn.projections.hooks import ChangedRows

TTL_SECONDS = 60
PAUSE_AFTER_ERROR = 5.0
_DELETE_BATCH = 1000


class OrderCache:
    def __init__(self, redis_url: str, *, prefix: str = "cairn:order") -> None:
        import redis.asyncio as aioredis

        self._client: Any = aioredis.Redis.from_url(
            redis_url, socket_timeout=0.25, socket_connect_timeout=0.25
        )
        self._prefix = prefix
        self._paused_until = 0.0

    def _key(self, version: int, order_id: str) -> str:
        return f"{self._prefix}:v{version}:{order_id}"

    def _usable(self) -> bool:
        return time.monotonic() >= self._paused_until

    def _failed(self) -> None:
        self._paused_until = time.monotonic() + PAUSE_AFTER_ERROR

    async def get(self, version: int, order_id: str) -> dict[str, Any] | None:
        if not self._usable():
            return None
        try:
            raw = await self._client.get(self._key(version, order_id))
        except Exception:
            self._failed()
            return None
        if raw is None:
            return None
        value: dict[str, Any] = json.loads(raw)
        return value

    async def fill(self, version: int, order: dict[str, Any]) -> None:
        if not self._usable():
            return
        try:
            await self._client.set(
                self._key(version, order["order_id"]), json.dumps(order), nx=True, ex=TTL_SECONDS
            )
        except Exception:
            self._failed()

    async def store(self, version: int, orders: Iterable[dict[str, Any]]) -> None:
        """Called by the projection after a commit: overwrite with the new views."""
        batch = list(orders)
        if not batch or not self._usable():
            return
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for order in batch:
                    pipe.set(
                        self._key(version, order["order_id"]), json.dumps(order), ex=TTL_SECONDS
                    )
                await pipe.execute()
        except Exception:
            self._failed()

    async def forget(self, version: int, order_ids: Sequence[str]) -> bool:
        """Drop the views of ``order_ids`` (a forgotten customer's), of every table version up
        to ``version`` (older ones may still be there until their TTL); whether Redis did."""
        keys = [self._key(v, o) for o in order_ids for v in range(1, version + 1)]
        try:
            for start in range(0, len(keys), _DELETE_BATCH):
                await self._client.unlink(*keys[start : start + _DELETE_BATCH])
        except Exception:
            self._failed()
            return False
        return True

    async def after_commit(self, version: int, changed: ChangedRows) -> None:
        """The ``orders`` projection committed a live batch: overwrite the views it changed."""
        await self.store(
            version,
            (
                public_order(row)
                for (table, _), row in changed.items()
                if table == ORDERS.base and row is not None
            ),
        )

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._client.aclose()
