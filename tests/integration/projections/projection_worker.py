"""A projection worker process for the crash and fail-over tests.

    python projection_worker.py <database_url> <batch_size> <log_path>

Runs every projection forever. After each committed checkpoint move it appends one line
``<projection> <from> <to> <pid>`` to ``log_path`` (flushed), so a test can check that no range
was ever applied twice and that ownership moved.
"""

from __future__ import annotations

import asyncio
import os
import sys

import cairn
from cairn.orders.components import build_projections
from cairn.projections import RunnerConfig
from cairn.projections.runner import ProjectionRunner


async def main(url: str, batch_size: int, log_path: str) -> None:
    log = open(log_path, "a", buffering=1)  # noqa: ASYNC230, SIM115 - line-buffered test log
    original = ProjectionRunner.step

    async def logged_step(self: ProjectionRunner) -> int:
        # The stored checkpoint, not the in-memory position: a batch of events the projection
        # ignores only moves the latter, and is re-read after a crash (harmlessly).
        before = self.persisted
        count = await original(self)
        if self.persisted != before:
            log.write(f"{self.name} {before} {self.persisted} {os.getpid()}\n")
        return count

    ProjectionRunner.step = logged_step  # type: ignore[method-assign]
    async with cairn.open_store(url) as store:
        engine = build_projections(
            url, store, config=RunnerConfig(batch_size=batch_size, lease_retry=0.2)
        )
        try:
            await engine.run()
        finally:
            await engine.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
