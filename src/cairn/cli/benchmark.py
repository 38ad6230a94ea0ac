"""``cairn bench``: command throughput through the command side, without HTTP."""

from __future__ import annotations

from rich.console import Console

from cairn.errors import ApplicationError
from cairn.settings import Settings


async def run_bench(settings: Settings, orders: int, concurrency: int, console: Console) -> None:
    raise ApplicationError("app.unavailable", "the benchmark needs the command side")
