"""``cairn demo``: the whole order flow on embedded SQLite, shown with Rich."""

from __future__ import annotations

from rich.console import Console

from cairn.errors import ApplicationError


async def run_demo(database_url: str, console: Console) -> None:
    raise ApplicationError("app.unavailable", "the demo needs the command side (not built yet)")
