"""SPEC §12: the fulfilment saga calls the payment gateway through its circuit breaker. A slow
gateway is cut at the breaker's call timeout, a down one opens the breaker so later attempts
fail fast without reaching it, every such failure is a retryable step error, and once the
gateway is back the next order goes through. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from saga_harness import FAST, World, backend_url

from cairn.breakers import Breakers
from cairn.orders.adapters import Authorization, FakeCarrier, FakePaymentGateway, Ledger
from cairn.orders.adapters.guarded import guarded
from cairn.orders.bootstrap import bootstrap
from cairn.orders.components import build_saga_runner
from cairn.settings import Settings

pytestmark = pytest.mark.parametrize("backend", ["sqlite", "postgres"])


class UnsteadyGateway(FakePaymentGateway):
    """The fake gateway, which can be down (refuses connections) or slow, and counts the
    authorisations that reached it."""

    def __init__(self) -> None:
        super().__init__(ledger=Ledger())
        self.calls = 0
        self.down = False

    async def authorize(self, **kwargs: Any) -> Authorization:
        self.calls += 1
        if self.down:
            raise ConnectionRefusedError("payment gateway refused the connection")
        return await super().authorize(**kwargs)


@pytest.fixture
def url(request: pytest.FixtureRequest, backend: str) -> str:
    return backend_url(request, backend)


@contextlib.asynccontextmanager
async def guarded_world(url: str, breakers: Breakers) -> AsyncIterator[World]:
    settings = Settings(database_url=url)
    gateway, carrier = UnsteadyGateway(), FakeCarrier(ledger=Ledger())
    container = await bootstrap(settings, gateway=gateway, carrier=carrier)
    guarded_gateway, guarded_carrier = guarded(gateway, carrier, breakers)
    runner = await build_saga_runner(
        settings,
        container.store,
        container.command_bus,
        guarded_gateway,
        guarded_carrier,
        policy=FAST,
    )
    runner.poll_interval = 0.02
    task = asyncio.create_task(runner.run())
    try:
        yield World(container, runner, gateway, carrier)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await runner.close()
        await container.close()


async def test_a_down_gateway_opens_its_breaker_and_later_attempts_fail_fast(url: str) -> None:
    breakers = Breakers(threshold=2, reset_after=60, call_timeout=0.3)
    async with guarded_world(url, breakers) as w:
        gateway = w.gateway
        assert isinstance(gateway, UnsteadyGateway)
        gateway.down = True
        await w.product("MUG", 10)
        order = await w.order({"MUG": 1})
        saga = await w.wait(order, "completed", step="cancelled")
        # Three attempts (FAST), only two reached the gateway: the third met the open breaker.
        assert gateway.calls == 2
        history = await w.runner.history(saga.saga_id)
        errors = [str(h.detail) for h in history if h.step == "authorize" and h.kind != "sent"]
        assert any("circuit open" in e for e in errors), errors
        status = breakers.get("payment_gateway").status()
        assert (status.state, status.openings) == ("open", 1)


async def test_a_slow_gateway_is_cut_at_the_breaker_timeout_and_retried(url: str) -> None:
    breakers = Breakers(threshold=10, reset_after=0.2, call_timeout=0.1)
    async with guarded_world(url, breakers) as w:
        gateway = w.gateway
        assert isinstance(gateway, FakePaymentGateway)
        gateway.latency = 5.0  # far beyond the step timeout (FAST: 0.5 s)
        await w.product("MUG", 10)
        order = await w.order({"MUG": 1})
        saga = await w.wait(order, "completed", step="cancelled")
        assert "payment_gateway: no answer within 0.1 s" in saga.data["reason"]
        gateway.latency = 0.0
        again = await w.order({"MUG": 1})
        assert (await w.wait(again, "completed")).data["outcome"] == "confirmed"
        assert len(gateway.ledger.entries("authorize")) == 1
