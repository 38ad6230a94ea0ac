"""A runner that sleeps until the next due step still sees the work other processes leave it:
a step an operator reset from another process (the CLI, the admin API of another server)."""

from __future__ import annotations

from typing import Any

import pytest
from saga_harness import backend_url, running

from cairn.orders.adapters import FakeCarrier, TransientAdapterError
from cairn.orders.components import build_saga_runner
from cairn.sagas.runner import IDLE_POLL_INTERVAL
from cairn.settings import Settings

pytestmark = pytest.mark.slow


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest) -> str:
    return backend_url(request, str(request.param))


class _BrokenCancelCarrier(FakeCarrier):
    broken = True

    async def cancel_shipment(self, **kwargs: Any) -> None:
        if self.broken:
            raise TransientAdapterError("carrier API down")
        await super().cancel_shipment(**kwargs)


async def test_a_retry_asked_from_another_process_is_run_by_the_sleeping_runner(
    url: str,
) -> None:
    carrier = _BrokenCancelCarrier()
    async with running(url, carrier=carrier) as w:
        await w.product("MUG", 10)
        order = await w.order({"MUG": 1})
        await w.wait(order, "completed")
        await w.cancel(order)
        saga = await w.wait(order, "failed")
        carrier.broken = False
        # Another process's operators: the same database, no way to wake this runner.
        settings = Settings(database_url=url)
        store, bus = w.container.store, w.container.command_bus
        elsewhere = await build_saga_runner(settings, store, bus, w.gateway, carrier)
        try:
            await elsewhere.retry(saga.saga_id)
        finally:
            await elsewhere.close()
        done = await w.wait(order, "completed", step="cancelled", timeout=IDLE_POLL_INTERVAL + 10)
        assert done.data["outcome"] == "cancelled"
        assert await w.stock("MUG") == (10, 0)
