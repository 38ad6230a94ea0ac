"""SPEC §12, circuit breakers (cairn.breakers): a slow call is cut at the timeout, failures in
a row open the breaker, an open breaker fails fast without calling, and after the reset time
one call decides whether it closes again. Answers (a refusal) and cancellations are no
failures."""

from __future__ import annotations

import asyncio
import time

import pytest

from cairn.breakers import Breaker, Breakers
from cairn.errors import CircuitOpenError, PermanentAdapterError, TransientAdapterError


class Service:
    """A dependency that fails, hangs or answers, and counts the calls that reached it."""

    def __init__(self) -> None:
        self.calls = 0
        self.mode = "up"

    async def __call__(self) -> str:
        self.calls += 1
        if self.mode == "down":
            raise ConnectionRefusedError("connection refused")
        if self.mode == "slow":
            await asyncio.sleep(60)
        if self.mode == "refuses":
            raise PermanentAdapterError("no such address")
        return "ok"


def breaker(**options: float) -> Breaker:
    settings = {"threshold": 3, "reset_after": 0.2, "call_timeout": 0.1} | options
    return Breakers(
        threshold=int(settings["threshold"]),
        reset_after=settings["reset_after"],
        call_timeout=settings["call_timeout"],
    ).get("svc", answers=(PermanentAdapterError,))


async def fail(b: Breaker, service: Service, times: int) -> None:
    for _ in range(times):
        with pytest.raises((ConnectionRefusedError, TransientAdapterError)):
            await b.call(service)


async def test_a_call_that_succeeds_returns_its_result_and_leaves_the_breaker_closed() -> None:
    b, service = breaker(), Service()
    assert await b.call(service) == "ok"
    assert b.status().state == "closed"


async def test_a_slow_call_is_cut_at_the_call_timeout_as_a_transient_error() -> None:
    b, service = breaker(call_timeout=0.05), Service()
    service.mode = "slow"
    started = time.monotonic()
    with pytest.raises(TransientAdapterError, match=r"no answer within 0\.05 s"):
        await b.call(service)
    assert time.monotonic() - started < 1.0
    assert b.status().failures == 1


async def test_failures_in_a_row_open_the_breaker_and_then_calls_fail_fast() -> None:
    b, service = breaker(), Service()
    service.mode = "down"
    await fail(b, service, 3)
    with pytest.raises(CircuitOpenError, match="ConnectionRefusedError: connection refused"):
        await b.call(service)
    assert service.calls == 3
    status = b.status()
    assert (status.state, status.failures, status.openings) == ("open", 3, 1)
    assert status.last_error == "ConnectionRefusedError: connection refused"


async def test_an_open_circuit_is_a_transient_error_for_retry_policies() -> None:
    assert issubclass(CircuitOpenError, TransientAdapterError)


async def test_a_success_resets_the_failures_in_a_row() -> None:
    b, service = breaker(), Service()
    service.mode = "down"
    await fail(b, service, 2)
    service.mode = "up"
    await b.call(service)
    service.mode = "down"
    await fail(b, service, 2)
    assert b.status().state == "closed"


async def test_after_the_reset_time_one_successful_call_closes_it_again() -> None:
    b, service = breaker(reset_after=0.1), Service()
    service.mode = "down"
    await fail(b, service, 3)
    await asyncio.sleep(0.15)
    assert b.status().state == "half_open"
    service.mode = "up"
    assert await b.call(service) == "ok"
    assert b.status().state == "closed"
    assert b.status().failures == 0


async def test_a_failed_trial_call_opens_it_again_and_counts_a_second_opening() -> None:
    b, service = breaker(reset_after=0.1), Service()
    service.mode = "down"
    await fail(b, service, 3)
    await asyncio.sleep(0.15)
    await fail(b, service, 1)
    assert (b.status().state, b.status().openings) == ("open", 2)


async def test_an_answer_such_as_a_refusal_is_no_failure() -> None:
    b, service = breaker(), Service()
    service.mode = "refuses"
    for _ in range(5):
        with pytest.raises(PermanentAdapterError):
            await b.call(service)
    assert (b.status().state, b.status().failures) == ("closed", 0)


async def test_a_call_cancelled_by_its_caller_is_no_failure() -> None:
    b, service = breaker(call_timeout=10), Service()
    service.mode = "slow"
    for _ in range(4):
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(b.call(service), 0.01)
    assert (b.status().state, b.status().failures) == ("closed", 0)


def test_breakers_are_one_per_name_and_listed_by_name() -> None:
    breakers = Breakers()
    assert breakers.get("carrier") is breakers.get("carrier")
    breakers.get("broker")
    assert [s.name for s in breakers.statuses()] == ["broker", "carrier"]
