"""What every benchmark module shares: measurements, a results file, a table, a scratch database.

A benchmark module ``bench/<name>.py`` defines ``async def run(quick: bool) -> Report``.
``python -m bench <name>`` runs it, writes ``bench/results/<name>.json`` and prints a table.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

RESULTS_DIR = Path(__file__).parent / "results"
PG_ADMIN_URL = os.environ.get("CAIRN_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


@dataclass
class Measurement:
    name: str
    value: float
    unit: str
    detail: str = ""


@dataclass
class Report:
    name: str
    measurements: list[Measurement] = field(default_factory=list)
    #: Goal checks and ratios: {"cairn/raw, 8 writers": {"value": 0.9, "goal": ">= 0.7", ...}}
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, name: str, value: float, unit: str, detail: str = "") -> float:
        self.measurements.append(Measurement(name, value, unit, detail))
        return value

    def check(self, name: str, value: float, goal: float, comparison: str = ">=") -> None:
        met = value >= goal if comparison == ">=" else value <= goal
        self.checks[name] = {"value": round(value, 3), "goal": f"{comparison} {goal}", "met": met}


def percentile(samples: list[float], q: float) -> float:
    if len(samples) == 1:
        return samples[0]
    return statistics.quantiles(samples, n=100, method="inclusive")[round(q) - 1]


class Stopwatch:
    def __init__(self) -> None:
        self.start = time.perf_counter()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start


@asynccontextmanager
async def scratch_pg_database(prefix: str) -> AsyncIterator[str]:
    """A fresh PostgreSQL database for one run, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    async with await psycopg.AsyncConnection.connect(PG_ADMIN_URL, autocommit=True) as conn:
        await conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{base}/{name}"
    finally:
        async with await psycopg.AsyncConnection.connect(PG_ADMIN_URL, autocommit=True) as conn:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def reference_loop_ms() -> float:
    """Best of three timings of a fixed pure-Python loop: how fast this host runs Python right
    now. A shared host swings by 3x within an hour, so a figure means little without it."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        total = 0
        for i in range(1_000_000):
            total += i
        best = min(best, time.perf_counter() - start)
    return round(best * 1000, 1)


def write_results(report: Report, *, loop_ms: float) -> Path:
    """``loop_ms``: :func:`reference_loop_ms`, taken by the caller (which also prints it)."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{report.name}.json"
    payload = {
        "benchmark": report.name,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "reference_loop_ms": loop_ms,
        },
        **asdict(report),
    }
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def format_table(report: Report) -> str:
    width = max([len(m.name) for m in report.measurements] + [len(c) for c in report.checks] + [10])
    lines = [f"== {report.name} =="]
    for m in report.measurements:
        detail = f"  ({m.detail})" if m.detail else ""
        lines.append(f"{m.name:<{width}}  {m.value:>14,.1f} {m.unit}{detail}")
    if report.checks:
        lines.append("-- goals --")
        for name, c in report.checks.items():
            mark = "met" if c["met"] else "MISSED"
            lines.append(f"{name:<{width}}  {c['value']:>14,.3f}   goal {c['goal']:<8} {mark}")
    lines += [f"note: {n}" for n in report.notes]
    return "\n".join(lines)
