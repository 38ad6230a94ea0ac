"""Read models queried on a replica (``CAIRN_READ_DATABASE_URL``): the queries read it, and
read-your-writes waits for the replica's own checkpoint, not for the runner that applied the
events on the primary. The "replica" here is a second SQLite file that receives the primary's
state only when the test copies it over (SQLite's online backup), so its lag is exact; the
end-to-end test runs the same on a PostgreSQL hot standby (tests/e2e/test_read_replica.py)."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import cairn
from cairn.errors import SchemaMissingError
from cairn.orders.components import OrderProjections, build_projections
from cairn.sql.factory import open_database

from .scenario import register_product


def _replicate(primary: Path, replica: Path) -> None:
    """The replica replays everything the primary has committed so far."""
    with (
        contextlib.closing(sqlite3.connect(primary)) as source,
        contextlib.closing(sqlite3.connect(replica)) as target,
    ):
        source.backup(target)


@contextlib.asynccontextmanager
async def running(engine: OrderProjections) -> AsyncIterator[None]:
    task = asyncio.create_task(engine.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_min_position_waits_for_the_replica_not_for_the_local_runner(
    tmp_path: Path,
) -> None:
    primary, replica = tmp_path / "primary.db", tmp_path / "replica.db"
    async with cairn.open_store(f"sqlite:///{primary}") as store:
        first = await register_product(store, "MUG-1", "Mug", "1.00")
        engine = build_projections(
            f"sqlite:///{primary}", store, replica=open_database(f"sqlite:///{replica}")
        )
        try:
            await engine.run_until_caught_up()
            _replicate(primary, replica)
            async with running(engine):
                later = await register_product(store, "CUP-1", "Cup", "2.00")
                runner = engine.runner("inventory")
                while runner.position < later:  # applied on the primary, by this process
                    await asyncio.sleep(0.01)

                assert await engine.wait_for("inventory", first, timeout=1.0)
                assert not await engine.wait_for("inventory", later, timeout=0.2)
                assert await engine.queries.get_inventory("CUP-1") is None

                _replicate(primary, replica)

                assert await engine.wait_for("inventory", later, timeout=1.0)
                cup = await engine.queries.get_inventory("CUP-1")
                assert cup is not None
                assert cup["sku"] == "CUP-1"
        finally:
            await engine.close()


async def test_a_replica_that_has_not_replayed_the_tables_has_reached_nothing(
    tmp_path: Path,
) -> None:
    primary, replica = tmp_path / "primary.db", tmp_path / "replica.db"
    sqlite3.connect(replica).close()  # a standby that has replayed none of the schema yet
    async with cairn.open_store(f"sqlite:///{primary}") as store:
        position = await register_product(store, "MUG-1", "Mug", "1.00")
        engine = build_projections(
            f"sqlite:///{primary}",
            store,
            replica=open_database(f"sqlite:///{replica}", standby=True),
        )
        try:
            await engine.run_until_caught_up()

            assert await engine.position_of("inventory") == 0
            assert not await engine.wait_for("inventory", position, timeout=0.1)
            with pytest.raises(SchemaMissingError):
                await engine.queries.get_inventory("MUG-1")
        finally:
            await engine.close()
