"""A database the saga runner used before its tables were ``.sql`` migrations and before its
checkpoints moved to the one checkpoint table upgrades in place and resumes where it stopped."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from saga_harness import backend_url, running

from cairn.orders.bootstrap import bootstrap
from cairn.orders.domain.inventory import RegisterProduct
from cairn.orders.domain.money import Money
from cairn.orders.domain.orders import CreateOrder, OrderItem, PlaceOrder, ShippingAddress
from cairn.sagas.schema import SAGAS
from cairn.settings import Settings
from cairn.sql.checkpoints import load_checkpoint
from cairn.sql.factory import open_database


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: Any) -> str:
    return backend_url(request, request.param)


async def _old_runner_state(url: str, order_id: str) -> int:
    """The store holds a placed order; the saga tables are the old runner's (created by its
    ``CREATE … IF NOT EXISTS`` on open, recorded nowhere) and its ``saga_checkpoints`` row says
    it handled ``$all`` up to the head. Returns that position."""
    settings = Settings(database_url=url)
    container = await bootstrap(settings)
    db = open_database(url)
    try:
        await container.command_bus.dispatch(
            RegisterProduct("MUG", "Mug", Money(Decimal("10.00"), "EUR"), 5)
        )
        await container.command_bus.dispatch(
            CreateOrder(
                order_id,
                "c-1",
                "Ada",
                "ada@example.com",
                "EUR",
                ShippingAddress("1 Main St", "Paris", "75001", "FR"),
                items=(OrderItem("MUG", 1),),
            )
        )
        await container.command_bus.dispatch(PlaceOrder(order_id, "tok_ok"))
        position = (await container.store.read_all(after=0, limit=1000))[-1].position
        # The first migration is, statement for statement, the DDL the old runner ran on open.
        old_ddl = SAGAS.for_dialect(db.dialect).migrations()[0].sql
        await db.ensure_schema(old_ddl.split(";"))
        async with db.transaction() as tx:
            await tx.execute(
                "INSERT INTO saga_checkpoints (name, position) VALUES (?, ?)",
                ("saga:fulfilment:0of1", position),
            )
        return position
    finally:
        await db.close()
        await container.close()


async def test_a_runner_resumes_at_the_checkpoint_its_old_table_held(url: str) -> None:
    before = "00000000-0000-4000-8000-000000000001"
    position = await _old_runner_state(url, before)
    async with running(url) as w:
        # Applied by build_saga_runner: the old tables are kept, the position copied over.
        assert await load_checkpoint(w.runner.db, w.runner.checkpoint_name(0)) >= position
        after = await w.order({"MUG": 1})
        assert (await w.wait(after, "completed")).data["outcome"] == "confirmed"
        # The order placed before the upgrade was handled by the old runner (its checkpoint
        # says so): the new one did not start it again from position 0.
        assert await w.saga(before) is None
        old = await w.runner.db.fetchall("SELECT name, position FROM saga_checkpoints")
        assert [(r["name"], int(r["position"])) for r in old] == [
            ("saga:fulfilment:0of1", position)
        ]
        assert await w.runner.db.migrate(SAGAS) == []
