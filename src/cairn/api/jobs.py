"""Replay (rebuild) jobs started from the admin API, with progress.

A job runs in this process; its progress is in memory (the rebuild itself is durable: the
projection runner rebuilds into fresh tables and swaps, so a job cut short by a restart leaves
the old tables answering, and it can simply be started again).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from cairn.observability.logging import get_logger

_log = get_logger("cairn.jobs")
MAX_KEPT = 100

#: ``progress(position, total)``: how far a job's work has got.
Progress = Callable[[int, int], None]


@dataclass
class Job:
    job_id: str
    kind: str
    target: str
    state: str = "running"
    position: int = 0
    total: int = 0
    error: str | None = None
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    def as_dict(self) -> dict[str, Any]:
        percent = 100.0 if self.state == "completed" else 0.0
        if self.total and self.state != "completed":
            percent = round(min(self.position / self.total, 1.0) * 100, 1)
        return {
            "job_id": self.job_id,
            "kind": self.kind,
            "name": self.target,
            "state": self.state,
            "position": self.position,
            "total": self.total,
            "progress": percent,
            "error": self.error,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }


class Jobs:
    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}

    def start(
        self, kind: str, target: str, total: int, work: Callable[[Progress], Awaitable[None]]
    ) -> Job:
        job = Job(job_id=str(uuid.uuid4()), kind=kind, target=target, total=total)

        def progress(position: int, total: int) -> None:
            job.position = int(position)
            if total:
                job.total = int(total)

        async def run() -> None:
            try:
                await work(progress)
            except asyncio.CancelledError:
                job.state = "cancelled"
                raise
            except Exception as exc:
                job.state = "failed"
                job.error = f"{type(exc).__name__}: {exc}"
                _log.error("job_failed", job_id=job.job_id, kind=kind, exc_info=exc)
            else:
                job.state = "completed"
                job.position = max(job.position, job.total)
            finally:
                job.finished_at = time.time()

        job.task = asyncio.create_task(run(), name=f"cairn-job:{kind}:{target}")
        self._jobs[job.job_id] = job
        self._trim()
        return job

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def list(self) -> list[Job]:
        return sorted(self._jobs.values(), key=lambda j: j.started_at, reverse=True)

    def running_for(self, target: str) -> Job | None:
        return next(
            (j for j in self._jobs.values() if j.target == target and j.state == "running"), None
        )

    def _trim(self) -> None:
        done = [j for j in self.list() if j.state != "running"]
        for job in done[MAX_KEPT:]:
            self._jobs.pop(job.job_id, None)

    async def close(self) -> None:
        for job in self._jobs.values():
            if job.task is not None and not job.task.done():
                job.task.cancel()
        for job in self._jobs.values():
            if job.task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await job.task
