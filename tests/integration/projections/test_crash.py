"""Real worker processes, killed with SIGKILL: nothing applied twice, nothing missed, and a
standby takes over within seconds (sqlite and postgres)."""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import cairn
from cairn.orders.components import build_projections
from cairn.store.base import EventStore

from .read_model_dump import dump
from .scenario import create_order, inventory_event, place, register_product

WORKER = Path(__file__).with_name("projection_worker.py")


@pytest.fixture(params=["sqlite", "postgres"])
def durable_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("pg_url" if request.param == "postgres" else "sqlite_url"))


def _start(url: str, batch: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[3])}
    return subprocess.Popen(
        [sys.executable, str(WORKER), url, str(batch), str(log)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    if proc.stderr is not None:
        proc.stderr.close()


async def _load(store: EventStore, orders: int, start: int = 0) -> None:
    for n in range(start, start + orders):
        oid = await create_order(
            store, f"c-{n % 5}", number=n, items=[("MUG-1", "Mug", 1 + n % 3, "2.50")]
        )
        if n % 2:
            await place(store, oid, str(2.5 * (1 + n % 3)) + "0")
            await inventory_event(store, "InventoryReserved", "MUG-1", order_id=oid, quantity=1)


def _ranges(log: Path) -> dict[str, list[tuple[int, int, int]]]:
    out: dict[str, list[tuple[int, int, int]]] = {}
    if not log.exists():
        return out
    for line in log.read_text().splitlines():
        parts = line.split()
        if len(parts) == 4:
            out.setdefault(parts[0], []).append((int(parts[1]), int(parts[2]), int(parts[3])))
    return out


def _assert_applied_exactly_once(log: Path, head: int) -> None:
    """Committed batches of each projection form one chain 0 → head: no overlap, no gap.
    (A batch killed after its commit but before its log line leaves a gap in the log, never an
    overlap; so we check overlaps strictly and coverage via the read models.)"""
    for name, ranges in _ranges(log).items():
        ranges.sort()
        for (_, end, _), (start, _, _) in itertools.pairwise(ranges):
            assert start >= end, f"{name}: a range was applied twice: {ranges}"
        assert ranges[-1][1] <= head


async def _first_batch(log: Path, pid: int, timeout: float = 30.0) -> None:
    """Until process ``pid`` has committed a batch: a slow start (a loaded CI host) must not let
    every kill land before the first commit, or the run would prove no takeover at all."""
    deadline = time.monotonic() + timeout
    while not any(p == pid for r in _ranges(log).values() for *_, p in r):
        assert time.monotonic() < deadline, f"worker {pid} committed nothing in {timeout} s"
        await asyncio.sleep(0.05)


async def _wait_until(engine_url: str, store: EventStore, head: int, timeout: float) -> bool:
    engine = build_projections(engine_url, store)
    try:
        return await engine.wait_for(head, timeout=timeout)
    finally:
        await engine.close()


async def test_kill_9_at_random_points_leaves_read_models_equal_to_a_clean_run(
    durable_url: str, tmp_path: Path
) -> None:
    rng = random.Random(7)
    log = tmp_path / "batches.log"
    async with cairn.open_store(durable_url) as store:
        await register_product(store, "MUG-1", "Mug", "2.50", stock=10_000)
        await _load(store, 300)
        for round_ in range(4):
            proc = _start(durable_url, rng.choice([3, 17, 50]), log)
            try:
                if round_ == 0:  # the backlog guarantees it work
                    await _first_batch(log, proc.pid)
                await asyncio.sleep(rng.uniform(0.6, 1.5))
                await _load(store, 20, start=1000 + 20 * round_)  # appends while it runs
            finally:
                _kill(proc)
        head = await store.head_position()
        proc = _start(durable_url, 200, log)
        try:
            assert await _wait_until(durable_url, store, head, timeout=30)
        finally:
            _kill(proc)

        _assert_applied_exactly_once(log, head)
        assert len({pid for r in _ranges(log).values() for *_, pid in r}) >= 2

        engine = build_projections(durable_url, store)
        try:
            survived = await dump(engine)
            for name in engine.names:
                await engine.rebuild(name)
            clean = await dump(engine)
        finally:
            await engine.close()
    assert survived == clean
    assert len(survived["orders"]) == 380


async def test_two_workers_never_apply_the_same_projection_and_a_standby_takes_over(
    durable_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "batches.log"
    async with cairn.open_store(durable_url) as store:
        await register_product(store, "MUG-1", "Mug", "2.50", stock=10_000)
        first = _start(durable_url, 5, log)
        second = _start(durable_url, 5, log)
        try:
            await _load(store, 60)
            head = await store.head_position()
            assert await _wait_until(durable_url, store, head, timeout=30)
            ranges = _ranges(log)
            owners = {name: {pid for *_, pid in r} for name, r in ranges.items()}
            assert all(len(p) == 1 for p in owners.values()), owners

            # Kill the owner of "orders"; the other process must take it over quickly.
            (owner,) = owners["orders"]
            victim, survivor = (first, second) if first.pid == owner else (second, first)
            _kill(victim)
            killed_at = time.monotonic()
            await _load(store, 5, start=500)
            head = await store.head_position()
            assert await _wait_until(durable_url, store, head, timeout=15)
            took_over_in = time.monotonic() - killed_at
            assert survivor.poll() is None
        finally:
            _kill(first)
            _kill(second)
    assert took_over_in < 5
    new_owners = {pid for *_, pid in _ranges(log)["orders"][-1:]}
    assert new_owners == {survivor.pid}
    _assert_applied_exactly_once(log, head)
