"""What the engine reports: per-projection status, and a running rebuild's progress."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class ProjectionStatus:
    """What ``GET /api/v1/admin/projections`` shows for one projection."""

    name: str
    position: int
    lag_events: int
    lag_seconds: float
    state: str  # running | catching_up | rebuilding | stopped | failed
    errors: int
    last_error: str | None
    parked: int
    owner: str | None
    version: int
    rebuild_done: int | None = None
    rebuild_total: int | None = None
    rebuild_rate: float | None = None
    rebuild_eta_seconds: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class RebuildProgress:
    """done / total, rate and ETA of a running rebuild."""

    def __init__(self, total: int) -> None:
        self.started = time.monotonic()
        self.done = 0
        self.total = total

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    @property
    def eta_seconds(self) -> float | None:
        rate = self.rate
        return max(self.total - self.done, 0) / rate if rate > 0 else None
