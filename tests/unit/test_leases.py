"""One owner at a time: a second claimant is refused until the first lets go or dies."""

import asyncio
import sys
import time
from pathlib import Path

from cairn.leases import Lease, lease_for


class _Counted(Lease):
    """A lease that counts how often its backend is asked."""

    asked = 0

    async def try_acquire(self) -> bool:
        self.held = True
        return True

    async def still_held(self) -> bool:
        self.asked += 1
        return self.held

    async def release(self) -> None:
        self.held = False


async def test_a_lease_is_asked_of_its_backend_at_most_once_per_interval() -> None:
    lease = _Counted("projection:orders")
    await lease.try_acquire()
    assert [await lease.still_held_within(60) for _ in range(3)] == [True, True, True]
    assert lease.asked == 1


async def test_a_doubted_lease_is_asked_of_its_backend_at_once() -> None:
    lease = _Counted("projection:orders")
    await lease.try_acquire()
    await lease.still_held_within(60)
    lease.doubt()
    await lease.still_held_within(60)
    assert lease.asked == 2


async def test_a_second_claimant_of_a_file_lease_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/c.db"
    first, second = lease_for(url, "projection:orders"), lease_for(url, "projection:orders")
    assert await first.try_acquire()
    assert not await second.try_acquire()
    await first.release()
    assert await second.try_acquire()
    await second.release()


async def test_a_file_lease_is_freed_when_its_owner_process_is_killed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/c.db"
    code = (
        "import asyncio, sys, time\n"
        "from cairn.leases import lease_for\n"
        f"lease = lease_for({url!r}, 'relay')\n"
        "assert asyncio.run(lease.try_acquire())\n"
        "print('held', flush=True)\n"
        "time.sleep(60)\n"
    )
    owner = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert owner.stdout is not None
        assert (await owner.stdout.readline()).strip() == b"held"
        contender = lease_for(url, "relay")
        assert not await contender.try_acquire()
        owner.kill()
        await owner.wait()
        assert await contender.try_acquire()
        await contender.release()
    finally:
        if owner.returncode is None:
            owner.kill()
            await owner.wait()


async def test_an_advisory_lease_is_freed_when_its_connection_ends(pg_url: str) -> None:
    first, second = lease_for(pg_url, "saga:0"), lease_for(pg_url, "saga:0")
    assert await first.try_acquire()
    assert not await second.try_acquire()
    await first.release()
    deadline = time.monotonic() + 5
    while not await second.try_acquire():
        assert time.monotonic() < deadline, "lease not released after its session closed"
    assert await second.still_held()
    await second.release()


async def test_different_names_are_independent_leases(pg_url: str) -> None:
    a, b = lease_for(pg_url, "projection:a"), lease_for(pg_url, "projection:b")
    assert await a.try_acquire()
    assert await b.try_acquire()
    await a.release()
    await b.release()
