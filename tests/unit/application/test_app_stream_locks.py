"""Commands on one stream take turns inside a process instead of racing each other."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from app_fixtures import memory_store, register_mug

from cairn.orders.domain import inventory
from cairn.orders.handlers import order_command_bus
from cairn.store.base import AppendResult, NewEvent


async def test_concurrent_commands_on_one_stream_append_once_each() -> None:
    store = await memory_store()
    bus = order_command_bus(store)
    await register_mug(bus, stock=0)
    appends = 0
    append = store.append

    async def counted(
        stream_id: str, events: Sequence[NewEvent], *a: Any, **k: Any
    ) -> AppendResult:
        nonlocal appends
        appends += 1
        await asyncio.sleep(0)  # let the others run, as a database round trip would
        return await append(stream_id, events, *a, **k)

    store.append = counted  # type: ignore[method-assign]

    results = await asyncio.gather(
        *(bus.dispatch(inventory.ReplenishStock("MUG-1", 1)) for _ in range(20))
    )

    assert appends == 20  # no append lost a race and had to run again
    assert sorted(r.version for r in results) == list(range(2, 22))
    assert len(bus.services.locks) == 0  # nothing kept once every command is done
