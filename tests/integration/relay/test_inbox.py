"""The inbox records a processed message id in the same transaction as the effect."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cairn.errors import UnsupportedStoreURL
from cairn.relay.inbox import Inbox, InboxTransaction


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    name = "sqlite_url" if request.param == "sqlite" else "pg_url"
    return str(request.getfixturevalue(name))


async def _create_table(database_url: str) -> None:
    async with await Inbox.open(database_url, "setup") as inbox, inbox.transaction() as tx:
        await tx.execute("CREATE TABLE IF NOT EXISTS effects (n INTEGER NOT NULL)")


async def _add_one(tx: InboxTransaction) -> None:
    await tx.execute("INSERT INTO effects (n) VALUES (?)", (1,))


async def _effects(inbox: Inbox) -> int:
    async with inbox.transaction() as tx:
        rows = await tx.fetchall("SELECT COUNT(*) AS n FROM effects")
    return int(rows[0]["n"])


async def test_a_redelivered_message_has_no_second_effect(database_url: str) -> None:
    await _create_table(database_url)
    async with await Inbox.open(database_url, "counter") as inbox:
        assert await inbox.process("msg-1", _add_one) is True
        assert await inbox.process("msg-1", _add_one) is False
        assert await _effects(inbox) == 1


async def test_a_redelivery_after_reopening_the_inbox_has_no_second_effect(
    database_url: str,
) -> None:
    await _create_table(database_url)
    async with await Inbox.open(database_url, "counter") as inbox:
        await inbox.process("msg-1", _add_one)
    async with await Inbox.open(database_url, "counter") as inbox:
        assert await inbox.process("msg-1", _add_one) is False
        assert await _effects(inbox) == 1


async def test_a_failed_effect_records_nothing_so_the_redelivery_applies_it(
    database_url: str,
) -> None:
    await _create_table(database_url)

    async def half_then_fail(tx: InboxTransaction) -> None:
        await _add_one(tx)
        raise RuntimeError("crash mid-effect")

    async with await Inbox.open(database_url, "counter") as inbox:
        with pytest.raises(RuntimeError):
            await inbox.process("msg-1", half_then_fail)
        assert not await inbox.seen("msg-1")
        assert await _effects(inbox) == 0
        assert await inbox.process("msg-1", _add_one) is True
        assert await _effects(inbox) == 1


async def test_consumers_have_separate_inboxes(database_url: str) -> None:
    await _create_table(database_url)
    async with (
        await Inbox.open(database_url, "a") as a,
        await Inbox.open(database_url, "b") as b,
    ):
        assert await a.process("msg-1", _add_one) is True
        assert await b.process("msg-1", _add_one) is True
        assert await _effects(a) == 2


async def test_the_inbox_refuses_a_memory_database() -> None:
    with pytest.raises(UnsupportedStoreURL):
        await Inbox.open("memory://", "counter")


async def test_prune_forgets_only_old_ids_of_its_own_consumer(database_url: str) -> None:
    await _create_table(database_url)
    async with (
        await Inbox.open(database_url, "counter") as inbox,
        await Inbox.open(database_url, "other") as other,
    ):
        await inbox.process("msg-1", _add_one)
        await other.process("msg-1", _add_one)
        assert await inbox.prune(timedelta(hours=1)) == 0
        assert await inbox.seen("msg-1")
        assert await inbox.prune(timedelta(seconds=-1)) == 1  # "older than a second from now"
        assert not await inbox.seen("msg-1")
        assert await other.seen("msg-1")
