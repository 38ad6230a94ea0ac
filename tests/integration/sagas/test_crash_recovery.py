"""kill -9 of a real saga worker process: nothing skipped, nothing done twice, deadlines kept."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from saga_harness import backend_url, order_status, running, stock

from cairn.orders.adapters import Ledger
from cairn.orders.domain.ids import payment_id_for

WORKER = str(Path(__file__).with_name("saga_worker.py"))

pytestmark = pytest.mark.slow
BACKENDS = pytest.mark.parametrize("backend", ["sqlite", "postgres"])


@pytest.fixture
def url(request: pytest.FixtureRequest, backend: str) -> str:
    return backend_url(request, backend)


class Workers:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, wait_ready: bool = True) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, WORKER, json.dumps(self.config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self.procs.append(proc)
        if wait_ready:
            assert proc.stdout is not None
            line = proc.stdout.readline()  # "ready": imports done, runner built
            assert line.strip() == b"ready", line
        return proc

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                self.kill(proc)
            if proc.stdout is not None:
                proc.stdout.close()


@pytest.fixture
def workers_for(tmp_path: Path) -> Iterator[Any]:
    made: list[Workers] = []

    def make(url: str, latency: float = 0.0, partitions: int = 1, **policy: Any) -> Workers:
        workers = Workers(
            {
                "url": url,
                "latency": latency,
                "partitions": partitions,
                "gateway_ledger": str(tmp_path / "gateway.jsonl"),
                "carrier_ledger": str(tmp_path / "carrier.jsonl"),
                "policy": {
                    "timeout": 0.5,
                    "attempts": 3,
                    "backoff": 0.05,
                    "max_backoff": 0.2,
                    "compensation_attempts": 5,
                    "deadline": 30,
                    **policy,
                },
            }
        )
        made.append(workers)
        return workers

    yield make
    for w in made:
        w.stop_all()


@contextlib.asynccontextmanager
async def observer(url: str) -> AsyncIterator[Any]:
    """The test's own view: store, bus and a saga runner that is never run (operators' API)."""
    async with running(url, start=False) as world:
        yield world


async def wait_resting(world: Any, orders: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        records = [await world.saga(o) for o in orders]
        if all(
            r is not None
            and r.status.value in ("completed", "timed_out")
            and r.step in ("done", "cancelled")
            for r in records
        ):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"sagas not finished: {[await world.saga(o) for o in orders]}")


@BACKENDS
async def test_killing_the_worker_at_random_points_changes_no_outcome(
    url: str, workers_for: Any, tmp_path: Path
) -> None:
    rng = random.Random(1234)
    async with observer(url) as world:
        await world.product("MUG", 100)
        await world.product("PEN", 1)
        plan = [
            ({"MUG": 1}, "tok_ok", "FR", "confirmed"),
            ({"MUG": 2, "PEN": 1}, "tok_ok", "FR", "confirmed"),
            ({"MUG": 1}, "tok_decline", "FR", "cancelled"),
            ({"MUG": 1}, "tok_flaky", "FR", "confirmed"),
            ({"MUG": 3}, "tok_ok", "ZZ", "cancelled"),
            ({"PEN": 5}, "tok_ok", "FR", "cancelled"),
            ({"MUG": 1}, "tok_ok", "DE", "confirmed"),
        ]
        orders = [await world.order(items, token, country) for items, token, country, _ in plan]
        # Gateway and carrier answer slowly, so the kills land in the middle of the work.
        workers = workers_for(url, latency=0.15)
        proc = workers.start()
        for _ in range(5):
            await asyncio.sleep(rng.uniform(0.05, 0.6))
            workers.kill(proc)
            proc = workers.start()
        await wait_resting(world, orders, timeout=60)

        for order, (_, _, _, expected) in zip(orders, plan, strict=True):
            assert await order_status(world.store, order) == expected
        # the clean-run outcome: 1 + 2 + 1 + 1 MUGs and 1 PEN held by confirmed orders
        assert await stock(world.store, "MUG") == (100, 5)
        assert await stock(world.store, "PEN") == (1, 1)

        gateway = Ledger(str(tmp_path / "gateway.jsonl"))
        carrier = Ledger(str(tmp_path / "carrier.jsonl"))
        for operation in ("authorize", "decline", "void", "capture"):
            per_payment = Counter(e.subject for e in gateway.entries(operation))
            assert all(n == 1 for n in per_payment.values()), (operation, per_payment)
        assert sum(1 for _ in gateway.entries("authorize")) == 5
        assert {e.subject for e in gateway.entries("void")} == {payment_id_for(orders[4])}
        per_shipment = Counter(e.subject for e in carrier.entries("create_shipment"))
        assert all(n == 1 for n in per_shipment.values())
        assert len(per_shipment) == 4
        for order in orders:
            for stream in (f"order-{order}", f"payment-{payment_id_for(order)}"):
                events = await world.store.read_stream(stream)
                types = [e.type for e in events if e.type not in ("ItemAdded",)]
                assert len(types) == len(set(types)), (stream, types)


@BACKENDS
async def test_a_deadline_set_before_a_crash_fires_after_the_restart(
    url: str, workers_for: Any
) -> None:
    async with observer(url) as world:
        await world.product("MUG", 10)
        workers = workers_for(url, timeout=2.0, attempts=3, deadline=1.0)
        proc = workers.start()
        order = await world.order({"MUG": 1}, token="tok_timeout")
        await world.wait(order, "running", timeout=20)
        workers.kill(proc)
        await asyncio.sleep(1.5)  # the deadline passes while no worker runs
        workers.start()
        saga = await world.wait(order, "timed_out", step="cancelled", timeout=30)
        assert saga.data["reason"] == "saga deadline exceeded"
        assert await order_status(world.store, order) == "cancelled"
        assert await stock(world.store, "MUG") == (10, 0)


def _no_step_ran_twice_at_once(history: list[Any], dead_pid: int) -> None:
    """Between a step's ``started`` and its answer nobody starts it again, unless the worker
    that started it was killed (its successor must re-run it)."""
    running: dict[str, str] = {}
    for entry in history:
        if entry.kind == "started":
            previous = running.get(entry.message_id)
            if previous is not None:
                assert previous.split(":")[1] == str(dead_pid), (
                    f"{entry.step} started twice concurrently"
                )
            running[entry.message_id] = entry.detail["worker"]
        elif entry.kind in ("succeeded", "retrying", "failed"):
            running.pop(entry.message_id, None)


@pytest.mark.parametrize("backend", ["postgres"])
async def test_two_workers_share_sagas_and_one_takes_over_when_the_other_dies(
    url: str, workers_for: Any, tmp_path: Path
) -> None:
    async with observer(url) as world:
        await world.product("MUG", 100)
        workers = workers_for(url, latency=0.1, partitions=4)
        first = workers.start()
        workers.start()
        tokens = ["tok_ok", "tok_flaky", "tok_decline", "tok_ok"] * 3
        orders = [await world.order({"MUG": 1}, token) for token in tokens]
        await asyncio.sleep(0.4)
        workers.kill(first)
        await wait_resting(world, orders, timeout=60)

        confirmed = [o for o, t in zip(orders, tokens, strict=True) if t != "tok_decline"]
        for order in orders:
            expected = "confirmed" if order in confirmed else "cancelled"
            assert await order_status(world.store, order) == expected
        assert await stock(world.store, "MUG") == (100, len(confirmed))
        gateway = Ledger(str(tmp_path / "gateway.jsonl"))
        per_payment = Counter(e.subject for e in gateway.entries("authorize"))
        assert sorted(per_payment) == sorted(payment_id_for(o) for o in confirmed)
        assert set(per_payment.values()) == {1}
        workers_seen: set[str] = set()
        for order in orders:
            record = await world.saga(order)
            assert record is not None
            history = await world.runner.history(record.saga_id)
            _no_step_ran_twice_at_once(history, first.pid)
            workers_seen |= {h.detail["worker"] for h in history if h.kind == "started"}
        assert len(workers_seen) == 2
