"""A crashed worker component is restarted quickly, however often it crashed before (SPEC §12:
every worker resumes within 15 s of the database's return): the restart delay is bounded, and
starts over after a healthy run."""

from __future__ import annotations

import asyncio

import pytest

from cairn import workers
from cairn.observability.logging import configure_logging
from cairn.workers import RESTART_BACKOFF, Workers


@pytest.fixture(autouse=True)
def logging_to_this_stderr() -> None:
    """Crashes are logged: to the stream pytest has now (an earlier test may have configured
    logging onto a captured stream that is closed since)."""
    configure_logging("CRITICAL", json=True)


class Crashing:
    """Crashes ``crashes`` times (a database outage), then runs until cancelled."""

    def __init__(self, crashes: int) -> None:
        self.crashes = crashes
        self.runs = 0
        self.recovered = asyncio.Event()

    async def run(self) -> None:
        self.runs += 1
        if self.runs <= self.crashes:
            raise ConnectionError("the database is down")
        self.recovered.set()
        await asyncio.Event().wait()

    async def close(self) -> None:
        return None


def test_the_restart_delay_never_exceeds_two_seconds() -> None:
    assert max(RESTART_BACKOFF.delay(n) for n in range(1, 100)) <= 2.0


async def test_a_component_that_crashed_many_times_is_restarted_within_its_bounded_delay(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(workers, "RESTART_BACKOFF", workers.Backoff(initial=0.001, maximum=0.01))
    component = Crashing(crashes=12)
    running = Workers([("projections", component)])
    await running.start()
    try:
        await asyncio.wait_for(component.recovered.wait(), timeout=60)
    finally:
        await running.stop()
    assert running.status()[0]["restarts"] == 12


async def test_after_a_healthy_run_the_backoff_starts_over(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    delays: list[int] = []

    class Recording(workers.Backoff):
        def delay(self, attempt: int) -> float:
            delays.append(attempt)
            return 0.0

    monkeypatch.setattr(workers, "RESTART_BACKOFF", Recording(initial=0.0))
    monkeypatch.setattr(workers, "HEALTHY_RUN", 0.05)

    settled = asyncio.Event()

    class SlowThenCrash:
        runs = 0

        async def run(self) -> None:
            self.runs += 1
            if self.runs in (1, 2):
                raise ConnectionError("down")
            if self.runs == 3:
                await asyncio.sleep(0.1)  # a healthy run, then a crash
                raise ConnectionError("down again")
            settled.set()
            await asyncio.Event().wait()

        async def close(self) -> None:
            return None

    running = Workers([("sagas", SlowThenCrash())])
    await running.start()
    try:
        await asyncio.wait_for(settled.wait(), timeout=60)
    finally:
        await running.stop()
    assert delays == [1, 2, 1]
