"""``cairn export FILE`` and ``cairn import FILE``: the backup, restore and migration path.

The format and the store's side are :mod:`cairn.store.transfer`; this module adds the progress
bars and what the order application needs so that an import repeats no effect: the fulfilment
saga runner's checkpoints are recorded at the imported head (each partition's row in the one
checkpoint table), so a runner started on the target follows only events appended after the
import, and an imported ``OrderPlaced`` never reserves stock or authorises a payment again.
Projections keep no checkpoint on the target, so they rebuild their read models from position
0 on their first run. See ``docs/export-import.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

import cairn
from cairn.errors import ApplicationError
from cairn.settings import Settings
from cairn.sql.checkpoints import save_checkpoint
from cairn.store.base import EventStore
from cairn.store.transfer import ExportReader, Summary, export_store
from cairn.store.urls import backend_of

#: Bound on opening the database.
CONNECT_TIMEOUT = 20.0


@dataclass(frozen=True, slots=True)
class Outcome:
    summary: Summary
    seconds: float

    @property
    def rate(self) -> float:
        return self.summary.events / self.seconds if self.seconds > 0 else 0.0

    def describe(self, verb: str, where: str) -> str:
        """The command's closing line."""
        s = self.summary
        return (
            f"{verb} {s.events} events (head {s.head}), {s.subject_keys} subject keys, "
            f"{s.streams} stream settings {where} in {self.seconds:.1f} s "
            f"({self.rate:,.0f} events/s)"
        )


@contextlib.contextmanager
def _bar(console: Console, what: str) -> Iterator[tuple[Progress, TaskID]]:
    with Progress(
        TextColumn(f"{what} [bold]events[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        yield progress, progress.add_task(what, total=None)


@contextlib.asynccontextmanager
async def _raw_store(url: str) -> AsyncIterator[EventStore]:
    """The store without a personal-data policy or upcasters: payloads as stored."""
    store = await asyncio.wait_for(cairn.open_store(url, migrate=False), CONNECT_TIMEOUT)
    try:
        yield store
    finally:
        await store.close()


async def export_to(settings: Settings, path: Path, console: Console) -> Outcome:
    """Write the store at ``settings.database_url`` to ``path`` (via ``path.partial``, renamed
    once complete, so a failed export never leaves a file that looks whole)."""
    partial = path.with_name(path.name + ".partial")
    started = time.perf_counter()
    async with _raw_store(settings.database_url) as store:
        with _bar(console, "exporting") as (progress, task), partial.open("w") as out:
            summary = await export_store(
                store,
                out,
                source_backend=backend_of(settings.database_url).value,
                cairn_version=cairn.__version__,
                on_start=lambda total: progress.update(task, total=total),
                progress=lambda done, total: progress.update(task, completed=done),
            )
            out.flush()
            os.fsync(out.fileno())
    os.replace(partial, path)
    return Outcome(summary, time.perf_counter() - started)


async def import_from(settings: Settings, path: Path, console: Console) -> Outcome:
    """Load the export at ``path`` into the empty store at ``settings.database_url``."""
    started = time.perf_counter()
    with path.open() as source:
        reader = ExportReader(source)
        async with _raw_store(settings.database_url) as store:
            if not await store.transfer().is_empty():
                raise store.transfer().refusal()
            # Before the events, so that no saga runner can ever see the imported history
            # without its checkpoints; undone if the import fails.
            await _saga_checkpoints(settings, reader.head)
            try:
                with _bar(console, "importing") as (progress, task):
                    progress.update(task, total=reader.events_expected)
                    head = await store.restore(
                        reader.state,
                        reader.batches(lambda done, _: progress.update(task, completed=done)),
                    )
            except BaseException:
                with contextlib.suppress(Exception):
                    await _saga_checkpoints(settings, 0)
                raise
    summary = Summary(
        reader.events_expected,
        head,
        len(reader.state.subject_keys),
        len(reader.state.streams),
        reader.header,
    )
    return Outcome(summary, time.perf_counter() - started)


async def _saga_checkpoints(settings: Settings, position: int) -> list[str]:
    """Record every saga partition's checkpoint at ``position`` (0: as if never run)."""
    from cairn.cli import ops

    async with ops.opened(settings) as (_, components):
        runner = components.sagas
        if runner is None:
            raise ApplicationError("app.unavailable", "no saga runner is configured")
        names = [runner.checkpoint_name(p) for p in range(runner.partitions)]
        async with runner.db.transaction() as tx:
            for name in names:
                await save_checkpoint(tx, name, position)
    return names
