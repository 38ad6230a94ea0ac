"""Every fulfilment path end to end, on SQLite and PostgreSQL (SPEC §4)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from saga_harness import FAST, backend_url, running

from cairn.errors import DomainError
from cairn.orders.adapters import FakeCarrier, FakePaymentGateway, TransientAdapterError
from cairn.orders.fulfilment import CREATE_SHIPMENT
from cairn.sagas import StepContext, StepPolicy
from cairn.sagas import runner as saga_runner

pytestmark = pytest.mark.parametrize("backend", ["sqlite", "postgres"])


@pytest.fixture
def url(request: pytest.FixtureRequest, backend: str) -> str:
    return backend_url(request, backend)


async def test_happy_path_confirms_the_order_and_completes_the_saga(url: str) -> None:
    async with running(url) as w:
        await w.product("MUG", 10)
        order = await w.order({"MUG": 2})
        saga = await w.wait(order, "completed")
        assert saga.data["outcome"] == "confirmed"
        assert await w.order_status(order) == "confirmed"
        assert await w.stock("MUG") == (10, 2)
        assert len(w.gateway.ledger.entries("authorize")) == 1
        assert len(w.carrier.ledger.entries("create_shipment")) == 1


async def test_insufficient_stock_cancels_the_order_and_charges_nothing(url: str) -> None:
    async with running(url) as w:
        await w.product("MUG", 10)
        await w.product("PEN", 1)
        order = await w.order({"MUG": 2, "PEN": 5})
        saga = await w.wait(order, "completed", step="cancelled")
        assert "insufficient stock of PEN" in saga.data["reason"]
        assert await w.order_status(order) == "cancelled"
        assert await w.stock("MUG") == (10, 0)
        assert await w.stock("PEN") == (1, 0)
        assert w.gateway.ledger.entries() == []


async def test_a_declined_payment_releases_the_stock_and_cancels(url: str) -> None:
    async with running(url) as w:
        await w.product("MUG", 10)
        order = await w.order({"MUG": 3}, token="tok_decline")
        saga = await w.wait(order, "completed", step="cancelled")
        assert saga.data["reason"] == "payment declined: card declined"
        assert await w.order_status(order) == "cancelled"
        assert await w.stock("MUG") == (10, 0)
        assert w.carrier.ledger.entries() == []


async def test_a_gateway_that_never_answers_times_the_step_out_and_cancels(url: str) -> None:
    async with running(url) as w:
        await w.product("MUG", 10)
        order = await w.order({"MUG": 1}, token="tok_timeout")
        saga = await w.wait(order, "completed", step="cancelled")
        assert "no answer within" in saga.data["reason"]
        assert await w.order_status(order) == "cancelled"
        assert await w.stock("MUG") == (10, 0)
        attempts = list(w.gateway.ledger.entries("attempt"))
        assert len(attempts) == FAST.attempts


async def test_a_flaky_gateway_is_retried_until_the_order_is_confirmed(url: str) -> None:
    async with running(url) as w:
        await w.product("MUG", 10)
        order = await w.order({"MUG": 1}, token="tok_flaky")
        saga = await w.wait(order, "completed")
        assert saga.data["outcome"] == "confirmed"
        history = await w.runner.history(saga.saga_id)
        assert [h.kind for h in history if h.step == "authorize"].count("retrying") == 2
        assert len(w.gateway.ledger.entries("authorize")) == 1


async def test_carrier_refusal_compensates_in_reverse_order(url: str) -> None:
    async with running(url) as w:
        await w.product("MUG", 10)
        order = await w.order({"MUG": 1}, country="ZZ")
        saga = await w.wait(order, "completed", step="cancelled")
        assert "ZZ" in saga.data["reason"]
        events = await w.store.read_all(after=0, limit=1000)
        mine = [e.type for e in events if e.data.get("order_id") == order]
        assert mine.index("PaymentVoided") < mine.index("InventoryReleased")
        assert mine.index("InventoryReleased") < mine.index("OrderCancelled")
        assert len(w.gateway.ledger.entries("void")) == 1
        assert await w.stock("MUG") == (10, 0)


async def test_cancelling_while_the_payment_is_authorising_undoes_the_late_authorisation(
    url: str,
) -> None:
    gateway = FakePaymentGateway(latency=0.4)
    async with running(url, gateway=gateway) as w:
        await w.product("MUG", 10)
        order = await w.order({"MUG": 1})
        await w.wait(order, "running", step="authorize_payment")
        await w.cancel(order)
        saga = await w.wait(order, "completed", step="cancelled")
        assert saga.data["reason"] == "changed my mind"
        assert await w.stock("MUG") == (10, 0)
        assert await w.order_status(order) == "cancelled"
        # the authorisation that answered after the cancel was voided
        assert len(gateway.ledger.entries("authorize")) == len(gateway.ledger.entries("void"))


async def test_cancelling_a_confirmed_order_cancels_shipment_voids_and_releases(url: str) -> None:
    async with running(url) as w:
        await w.product("MUG", 10)
        order = await w.order({"MUG": 2})
        await w.wait(order, "completed")
        await w.cancel(order)
        await w.wait(order, "completed", step="cancelled")
        assert await w.stock("MUG") == (10, 0)
        assert len(w.gateway.ledger.entries("void")) == 1
        assert len(w.carrier.ledger.entries("cancel_shipment")) == 1
        types = await w.types(f"order-{order}")
        assert types.count("OrderCancelled") == 1


async def test_shipping_captures_the_payment_and_commits_the_stock(url: str) -> None:
    async with running(url) as w:
        await w.product("MUG", 10)
        order = await w.order({"MUG": 2})
        await w.wait(order, "completed")
        await w.ship(order)
        await w.wait(order, "completed", step="shipped")
        for _ in range(100):
            if await w.stock("MUG") == (8, 0) and w.gateway.ledger.entries("capture"):
                break
            await asyncio.sleep(0.05)
        assert await w.stock("MUG") == (8, 0)
        assert len(w.gateway.ledger.entries("capture")) == 1


async def test_the_saga_deadline_times_it_out_and_undoes_a_late_authorisation(url: str) -> None:
    policy = StepPolicy(timeout=3, attempts=1, backoff=0.05, deadline=0.5)
    gateway = FakePaymentGateway(latency=1.0)
    async with running(url, policy=policy, gateway=gateway) as w:
        await w.product("MUG", 10)
        order = await w.order({"MUG": 1})
        saga = await w.wait(order, "timed_out")
        assert saga.data["reason"] == "saga deadline exceeded"
        assert await w.order_status(order) == "cancelled"
        assert await w.stock("MUG") == (10, 0)
        assert len(gateway.ledger.entries("void")) == len(gateway.ledger.entries("authorize"))


class _BrokenCancelCarrier(FakeCarrier):
    broken = True

    async def cancel_shipment(self, **kwargs: Any) -> None:
        if self.broken:
            raise TransientAdapterError("carrier API down")
        await super().cancel_shipment(**kwargs)


async def test_a_compensation_that_keeps_failing_shows_failed_until_an_operator_retries(
    url: str,
) -> None:
    carrier = _BrokenCancelCarrier()
    async with running(url, carrier=carrier) as w:
        await w.product("MUG", 10)
        order = await w.order({"MUG": 1})
        await w.wait(order, "completed")
        await w.cancel(order)
        saga = await w.wait(order, "failed")
        assert saga.step == "undo:cancel_shipment"
        assert [s.saga_id for s in await w.runner.list("failed")] == [saga.saga_id]
        carrier.broken = False
        await w.runner.retry(saga.saga_id)
        await w.wait(order, "completed", step="cancelled")
        assert await w.stock("MUG") == (10, 0)
        kinds = [h.kind for h in await w.runner.history(saga.saga_id)]
        assert "retry" in kinds


async def test_operators_list_sagas_by_status_with_a_limit(url: str) -> None:
    async with running(url) as w:
        await w.product("MUG", 100)
        orders = [await w.order({"MUG": 1}) for _ in range(3)]
        for order in orders:
            await w.wait(order, "completed")
        assert len(await w.runner.list("completed")) == 3
        assert len(await w.runner.list("completed", limit=2)) == 2
        assert await w.runner.list("failed") == []
        assert len(await w.runner.list(limit=1000)) == 3


class _AddressBook(FakeCarrier):
    """A carrier that remembers the address of every booking."""

    def __init__(self) -> None:
        super().__init__()
        self.addresses: list[dict[str, Any]] = []

    async def create_shipment(self, **booking: Any) -> Any:
        self.addresses.append(dict(booking["address"]))
        return await super().create_shipment(**booking)


async def test_the_shipment_goes_to_the_created_address_whether_the_order_is_cached_or_not(
    url: str,
) -> None:
    carrier = _AddressBook()
    async with running(url, carrier=carrier) as w:
        await w.product("MUG", 10)
        first = await w.order({"MUG": 1})  # this process placed it: its state is cached
        await w.wait(first, "completed")
        orders = w.container.command_bus.repositories.for_category("order")
        orders.forget()
        created = (await w.store.read_stream(f"order-{first}", to_version=1))[0]
        step = StepContext(
            saga_id="s-1",
            saga_type="fulfilment",
            key=first,
            step="ship-again",
            kind=CREATE_SHIPMENT,
            payload={"order_id": first},
            command_id=str(uuid.uuid4()),
            attempt=1,
            correlation_id=None,
            causation_id=None,
            compensation=False,
        )
        with pytest.raises(DomainError):  # the shipment exists: the booking is what we check
            await w.runner.steps.effects[CREATE_SHIPMENT](step)
    assert carrier.addresses == [created.data["shipping_address"]] * 2


async def test_a_retried_step_runs_when_due_not_at_the_pumps_idle_bound(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The pump must be woken after the retry's row commits: woken before, it finds nothing
    # due and sleeps its idle bound, here far beyond the harness's wait.
    monkeypatch.setattr(saga_runner, "IDLE_POLL_INTERVAL", 60.0)
    async with running(url) as w:
        await w.product("MUG", 10)
        order = await w.order({"MUG": 1}, token="tok_flaky")
        saga = await w.wait(order, "completed", timeout=10)
        assert saga.data["outcome"] == "confirmed"
