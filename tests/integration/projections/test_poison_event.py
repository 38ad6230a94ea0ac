"""SPEC §12: no single stored event can stop a projection. A read-model write that fails for a
reason that will not go away (a data error) is retried, then parked with its error, and the
projection goes on with the events after it."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

import cairn
from cairn.orders.codec import domain_personal_data
from cairn.orders.components import build_projections
from cairn.projections import RunnerConfig
from cairn.projections.parking import is_data_error
from cairn.store import personal

from .scenario import create_order


async def test_an_event_whose_row_cannot_be_written_is_parked_and_the_projection_goes_on(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A NUL in a personal field is what used to get through (sealed, the store's NUL check
    # cannot see it): bypass the store's new refusal to write such an event as older builds did.
    monkeypatch.setattr(personal, "refuse_nul", lambda *_: None)
    config = RunnerConfig(retry_backoff=0.001, batch_size=50)
    async with cairn.open_store(pg_url, personal_data=domain_personal_data()) as store:
        engine = build_projections(pg_url, store, config=config)
        try:
            first = await create_order(store, "c-1", number=1)
            poison = await create_order(store, "c-2", number=2, name="Ada\x00Lovelace")
            later = [await create_order(store, f"c-{n}", number=n) for n in range(3, 6)]
            task = asyncio.create_task(engine.run())
            try:
                head = await store.head_position()
                assert await engine.wait_for("orders", head, timeout=20)
                for order_id in (first, *later):
                    assert await engine.queries.get_order(order_id) is not None, order_id
                assert await engine.queries.get_order(poison) is None
                (parked,) = await engine.parked("orders")
                assert parked.event_type == "OrderCreated"
                assert parked.stream_id == f"order-{poison}"
                assert "UntranslatableCharacter" in parked.error
                assert parked.attempts == config.handler_attempts
                # Still live: a new order after the parked one reaches the read model.
                newer = await create_order(store, "c-9", number=9)
                assert await engine.wait_for("orders", await store.head_position(), timeout=10)
                assert await engine.queries.get_order(newer) is not None
                status = {s.name: s for s in await engine.status()}
                assert status["orders"].state == "running"
                assert status["orders"].parked == 1
                assert status["orders"].errors >= config.handler_attempts
                assert all(s.state == "running" for s in status.values())
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        finally:
            await engine.close()


def test_data_errors_are_told_from_passing_ones() -> None:
    import psycopg

    assert is_data_error(psycopg.errors.UntranslatableCharacter("x"))
    assert is_data_error(psycopg.errors.NumericValueOutOfRange("x"))
    assert is_data_error(OverflowError("Python int too large to convert to SQLite INTEGER"))
    wrapped = RuntimeError("wrapped")
    wrapped.__cause__ = UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")
    assert is_data_error(wrapped)
    assert not is_data_error(psycopg.OperationalError("server closed the connection"))
    assert not is_data_error(ConnectionError())
