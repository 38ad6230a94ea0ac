"""A live follower takes this process's own appends from memory, opened with the keys the
append used, and a forget in another process clears them (PostgreSQL)."""

from __future__ import annotations

import asyncio

import cairn
from cairn import NewEvent
from cairn.store.personal import REDACTED, PersonalDataPolicy, PersonalFields

POLICY = PersonalDataPolicy(
    {"AccountOpened": PersonalFields("customer_id", frozenset({"name", "email"}))}
)
OPENED = NewEvent("AccountOpened", {"customer_id": "c-1", "name": "Ada", "email": "ada@x.test"})


async def test_a_live_read_of_our_own_append_needs_no_key_from_the_database(pg_url: str) -> None:
    async with cairn.open_store(pg_url, personal_data=POLICY) as store:
        await store.append("account-1", [OPENED])
        await store.read_all_live(after=0)  # (starts the listener)
        async with store._connection() as conn:  # the key gone, behind the store's back
            await conn.execute("DELETE FROM subject_keys")

        (live,) = await store.read_all_live(after=0)
        (read,) = await store.read_all(after=0)

    assert live.data["name"] == "Ada"
    assert read.data["name"] == REDACTED


async def test_a_forget_by_another_process_clears_what_our_followers_keep_opened(
    pg_url: str,
) -> None:
    async with (
        cairn.open_store(pg_url, personal_data=POLICY) as ours,
        cairn.open_store(pg_url, personal_data=POLICY) as theirs,
    ):
        await ours.append("account-1", [OPENED])
        assert (await ours.read_all_live(after=0))[0].data["name"] == "Ada"

        assert await theirs.forget_subject("c-1")

        async def redacted() -> None:
            while (await ours.read_all_live(after=0))[0].data["name"] != REDACTED:
                await asyncio.sleep(0.01)

        await asyncio.wait_for(redacted(), timeout=5)
