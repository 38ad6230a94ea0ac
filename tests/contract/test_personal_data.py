"""SPEC §1, personal data: fields marked personal are stored sealed with a per-subject key, and
forgetting the subject makes them read back redacted everywhere, replays included, while the
rest of the history stays intact. Every backend."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

import cairn
from cairn import NewEvent
from cairn.errors import InvalidEventError
from cairn.store import EventStore
from cairn.store.personal import REDACTED, PersonalDataPolicy, PersonalFields

POLICY = PersonalDataPolicy(
    {"AccountOpened": PersonalFields("customer_id", frozenset({"name", "email"}))}
)


def opened(customer: str, name: str = "Ada") -> NewEvent:
    return NewEvent(
        "AccountOpened", {"customer_id": customer, "name": name, "email": f"{name}@x.test"}
    )


@pytest.fixture
async def sealing(store_url: str) -> AsyncIterator[EventStore]:
    async with cairn.open_store(store_url, personal_data=POLICY) as store:
        yield store


async def test_personal_fields_read_back_in_clear(sealing: EventStore) -> None:
    await sealing.append("account-1", [opened("c-1")])
    (event,) = await sealing.read_stream("account-1")
    assert event.data == {"customer_id": "c-1", "name": "Ada", "email": "Ada@x.test"}


async def test_append_result_carries_the_personal_fields_in_clear(sealing: EventStore) -> None:
    result = await sealing.append("account-1", [opened("c-1")])
    assert list(result.events) == await sealing.read_stream("account-1")
    assert result.events[0].data["name"] == "Ada"


async def test_personal_fields_are_not_stored_in_clear(db_url: str) -> None:
    async with cairn.open_store(db_url, personal_data=POLICY) as store:
        await store.append("account-1", [opened("c-1")])
    async with cairn.open_store(db_url) as raw:
        (event,) = await raw.read_all()
    assert "Ada" not in str(event.data)
    assert event.data["customer_id"] == "c-1"


async def test_forgotten_subject_reads_redacted_on_every_read_path(sealing: EventStore) -> None:
    result = await sealing.append("account-1", [opened("c-1")])
    await sealing.append("note-1", [NewEvent("Noted", {"text": "kept"})])
    assert await sealing.forget_subject("c-1")
    event_id = (await sealing.read_stream("account-1"))[0].id
    seen = [
        (await sealing.read_stream("account-1"))[0],
        (await sealing.read_all())[0],
        await sealing.read_event(event_id),
    ]
    for event in seen:
        assert event is not None
        assert event.data == {"customer_id": "c-1", "name": REDACTED, "email": REDACTED}
    assert (await sealing.read_all())[1].data == {"text": "kept"}
    assert result.version == 1


async def test_a_replay_by_subscription_sees_the_redaction(sealing: EventStore) -> None:
    await sealing.append("account-1", [opened("c-1")])
    await sealing.forget_subject("c-1")

    async def first() -> cairn.RecordedEvent:
        async for event in sealing.subscribe(after=0):
            return event
        raise AssertionError("subscription ended")

    event = await asyncio.wait_for(first(), timeout=10)
    assert event.data["name"] == REDACTED


async def test_a_live_read_after_a_forget_sees_the_redaction(sealing: EventStore) -> None:
    await sealing.append("account-1", [opened("c-1")])
    assert (await sealing.read_all_live(after=0))[0].data["name"] == "Ada"

    await sealing.forget_subject("c-1")

    assert (await sealing.read_all_live(after=0))[0].data["name"] == REDACTED


async def test_forgetting_one_subject_leaves_another_readable(sealing: EventStore) -> None:
    await sealing.append("account-1", [opened("c-1")])
    await sealing.append("account-2", [opened("c-2", "Grace")])
    await sealing.forget_subject("c-1")
    names = [e.data["name"] for e in await sealing.read_all()]
    assert names == [REDACTED, "Grace"]


async def test_a_forgotten_subject_seen_again_is_sealed_with_a_new_key(
    sealing: EventStore,
) -> None:
    await sealing.append("account-1", [opened("c-1")])
    await sealing.forget_subject("c-1")
    await sealing.append("account-1", [opened("c-1", "Ada2")])
    names = [e.data["name"] for e in await sealing.read_stream("account-1")]
    assert names == [REDACTED, "Ada2"]


async def test_a_subject_another_process_forgot_is_written_with_a_new_key(db_url: str) -> None:
    async with (
        cairn.open_store(db_url, personal_data=POLICY) as writer,
        cairn.open_store(db_url, personal_data=POLICY) as other,
    ):
        await writer.append("account-1", [opened("c-1")])
        assert await other.forget_subject("c-1")
        await writer.append("account-1", [opened("c-1", "Ada2")])
        for store in (writer, other):
            names = [e.data["name"] for e in await store.read_stream("account-1")]
            assert names == [REDACTED, "Ada2"]


async def test_concurrent_first_writes_of_a_subject_share_one_key(sealing: EventStore) -> None:
    await asyncio.gather(*(sealing.append(f"account-{i}", [opened("c-1")]) for i in range(8)))
    assert {e.data["name"] for e in await sealing.read_all()} == {"Ada"}
    await sealing.forget_subject("c-1")
    assert {e.data["name"] for e in await sealing.read_all()} == {REDACTED}


async def test_forgetting_an_unknown_subject_is_harmless(sealing: EventStore) -> None:
    assert not await sealing.forget_subject(f"nobody-{uuid.uuid4()}")


async def test_an_idempotent_retry_of_a_sealed_batch_writes_nothing(sealing: EventStore) -> None:
    event = opened("c-1")
    first = await sealing.append("account-1", [event], expected_version=0)
    again = await sealing.append("account-1", [event], expected_version=0)
    assert (again.version, again.position) == (first.version, first.position)
    assert len(await sealing.read_all()) == 1


@pytest.mark.parametrize("name", ["A\x00da", ["x", {"deep": "\x00"}]])
async def test_a_nul_in_a_personal_field_is_refused_before_sealing(
    sealing: EventStore, name: object
) -> None:
    """The store's NUL check sees only the sealed value; the plaintext is checked first, so a
    poison personal field never reaches a read model (SPEC §12, "Control characters")."""
    event = NewEvent("AccountOpened", {"customer_id": "c-1", "name": name, "email": "a@x.test"})
    with pytest.raises(InvalidEventError, match=r"'name'.*NUL"):
        await sealing.append("account-1", [event])
    assert await sealing.read_stream("account-1") == []
    assert await sealing.head_position() == 0
