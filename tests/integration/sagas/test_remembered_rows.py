"""On PostgreSQL a runner remembers the saga rows it committed and writes a transition without
reading them first (a version guard rides with the writes); a row someone else changed
meanwhile is read again, and the saga goes on from what was really stored."""

from __future__ import annotations

from typing import Any

from saga_harness import running

from cairn.orders.adapters import FakePaymentGateway
from cairn.orders.adapters.payment_gateway import Authorization
from cairn.sagas.instances import Instance
from cairn.sql.database import Database, Tx


def count_reads(world: Any) -> list[list[str]]:
    """Every ``lock_instances`` (the read before a transition) from now on: its saga ids."""
    repository = world.runner.transitions.repository
    reads: list[list[str]] = []
    lock_instances = repository.lock_instances

    async def recording(tx: Tx, saga_ids: list[str]) -> dict[str, Instance]:
        reads.append(list(saga_ids))
        result: dict[str, Instance] = await lock_instances(tx, saga_ids)
        return result

    repository.lock_instances = recording
    return reads


class _GatewayWithAnotherWriter(FakePaymentGateway):
    """While the payment step runs, another process writes the saga's row (as an operator's
    action from another server would)."""

    def __init__(self) -> None:
        super().__init__()
        self.db: Database | None = None

    async def authorize(self, **kwargs: Any) -> Authorization:
        assert self.db is not None
        await self.db.execute(
            "UPDATE saga_instances SET version = version + 1, updated_at = updated_at"
        )
        return await super().authorize(**kwargs)


async def test_a_saga_run_by_one_runner_is_never_read_before_its_transitions(
    pg_url: str,
) -> None:
    async with running(pg_url) as w:
        await w.product("MUG", 10)
        reads = count_reads(w)

        order = await w.order({"MUG": 1})
        record = await w.wait(order, "completed")

    assert record.data["outcome"] == "confirmed"
    assert reads == []


async def test_a_row_another_process_changed_is_read_again_and_the_saga_completes(
    pg_url: str,
) -> None:
    gateway = _GatewayWithAnotherWriter()
    async with running(pg_url, gateway=gateway) as w:
        gateway.db = w.runner.db
        await w.product("MUG", 10)
        reads = count_reads(w)

        order = await w.order({"MUG": 1})
        record = await w.wait(order, "completed")

        assert record.data["outcome"] == "confirmed"
        assert await w.order_status(order) == "confirmed"
        assert reads == [[record.saga_id]]  # the transition after the payment, once
