"""Sealing and revealing personal fields (crypto-shredding), independent of any backend."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cairn.errors import InvalidEventError, PersonalDataError
from cairn.store import personal as personal_module
from cairn.store.base import NewEvent, RecordedEvent
from cairn.store.personal import (
    REDACTED,
    SEALED,
    MemoryKeyStore,
    PersonalData,
    PersonalDataPolicy,
    PersonalFields,
)

POLICY = PersonalDataPolicy(
    {"OrderCreated": PersonalFields("customer_id", frozenset({"name", "address"}))}
)
ADDRESS = {"line1": "1 Quay St", "city": "Leeds"}


def created(customer: str = "c-1", **data: Any) -> NewEvent:
    return NewEvent(
        "OrderCreated",
        {"customer_id": customer, "name": "Ada", "address": ADDRESS, "total": "9.50", **data},
    )


def recorded(event: NewEvent, position: int = 1) -> RecordedEvent:
    return RecordedEvent(
        id=event.event_id,
        stream_id="order-1",
        type=event.type,
        data=dict(event.data),
        metadata={},
        version=position,
        position=position,
        recorded_at=datetime.now(UTC),
    )


@pytest.fixture
def personal() -> PersonalData:
    return PersonalData(POLICY, MemoryKeyStore())


async def test_personal_fields_are_stored_sealed(personal: PersonalData) -> None:
    (sealed,), _ = await personal.seal([created()])
    assert set(sealed.data["name"]) == {SEALED}
    assert set(sealed.data["address"]) == {SEALED}
    assert "Ada" not in str(sealed.data)
    assert "Leeds" not in str(sealed.data)


async def test_other_fields_and_event_identity_are_kept(personal: PersonalData) -> None:
    event = created()
    (sealed,), _ = await personal.seal([event])
    assert sealed.data["customer_id"] == "c-1"
    assert sealed.data["total"] == "9.50"
    assert sealed.event_id == event.event_id


async def test_a_sealed_event_reveals_its_original_data(personal: PersonalData) -> None:
    event = created()
    (sealed,), _ = await personal.seal([event])
    (revealed,) = await personal.reveal([recorded(sealed)])
    assert revealed.data == event.data


async def test_types_without_personal_fields_pass_untouched(personal: PersonalData) -> None:
    event = NewEvent("OrderPlaced", {"customer_id": "c-1", "name": "kept"})
    sealed, used = await personal.seal([event])
    assert sealed == [event]
    assert (used.keys, used.plaintexts) == ({}, {})


async def test_forgotten_subjects_read_back_redacted(personal: PersonalData) -> None:
    (sealed,), _ = await personal.seal([created()])
    assert await personal.keys.forget("c-1")
    (revealed,) = await personal.reveal([recorded(sealed)])
    assert revealed.data["name"] == REDACTED
    assert revealed.data["address"] == REDACTED
    assert revealed.data["total"] == "9.50"


async def test_forgetting_one_subject_leaves_the_others_readable(personal: PersonalData) -> None:
    (first, second), _ = await personal.seal([created("c-1"), created("c-2", name="Grace")])
    await personal.keys.forget("c-1")
    revealed = await personal.reveal([recorded(first, 1), recorded(second, 2)])
    assert [e.data["name"] for e in revealed] == [REDACTED, "Grace"]


async def test_a_subject_seen_again_after_forgetting_gets_a_new_key(
    personal: PersonalData,
) -> None:
    (old,), _ = await personal.seal([created()])
    await personal.keys.forget("c-1")
    (new,), _ = await personal.seal([created(name="Ada again")])
    revealed = await personal.reveal([recorded(old, 1), recorded(new, 2)])
    assert [e.data["name"] for e in revealed] == [REDACTED, "Ada again"]


async def test_forgetting_an_unknown_subject_reports_nothing_to_forget(
    personal: PersonalData,
) -> None:
    assert not await personal.keys.forget("nobody")


async def test_an_altered_sealed_value_is_an_error_not_a_redaction(
    personal: PersonalData,
) -> None:
    (sealed,), _ = await personal.seal([created()])
    key_id, token = sealed.data["name"][SEALED].split(":")
    flipped = token[:-4] + ("AAAA" if token[-4:] != "AAAA" else "BBBB")
    altered = replace(sealed, data={**sealed.data, "name": {SEALED: f"{key_id}:{flipped}"}})
    with pytest.raises(PersonalDataError, match="altered"):
        await personal.reveal([recorded(altered)])


async def test_a_sealed_value_does_not_open_under_another_subject(
    personal: PersonalData,
) -> None:
    (first, second), _ = await personal.seal([created("c-1"), created("c-2")])
    moved = replace(second, data={**second.data, "name": first.data["name"]})
    with pytest.raises(PersonalDataError):
        await personal.reveal([recorded(moved)])


async def test_personal_data_without_a_subject_is_refused(personal: PersonalData) -> None:
    with pytest.raises(InvalidEventError, match="customer_id"):
        await personal.seal([created(customer="")])


async def test_a_batch_without_sealed_fields_needs_no_key_lookup() -> None:
    class NoLookups(MemoryKeyStore):
        async def keys(self, key_ids: Any) -> dict[uuid.UUID, bytes]:
            raise AssertionError("looked up keys")

    personal = PersonalData(POLICY, NoLookups())
    plain = recorded(NewEvent("OrderPlaced", {"order_id": "o-1"}))
    assert await personal.reveal([plain]) == [plain]


#: Any text a personal field may hold: everything but NUL, which sealing refuses (no database
#: stores it in a text column; see the contract test of the refusal).
storable_text = st.text(alphabet=st.characters(exclude_characters="\x00"))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | storable_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(storable_text, inner, max_size=3),
    max_leaves=8,
)


@given(name=json_values, address=json_values)
async def test_any_storable_json_value_survives_sealing(name: Any, address: Any) -> None:
    personal = PersonalData(POLICY, MemoryKeyStore())
    event = created(name=name, address=address)
    (sealed,), _ = await personal.seal([event])
    (revealed,) = await personal.reveal([recorded(sealed)])
    assert revealed.data == event.data


async def test_one_key_lookup_serves_every_event_of_a_subject_in_a_batch() -> None:
    class Counting(MemoryKeyStore):
        calls = 0

        async def key_for_writing(self, subject: str) -> Any:
            Counting.calls += 1
            return await super().key_for_writing(subject)

    personal = PersonalData(POLICY, Counting())
    await personal.seal([created(), created(), created("c-2")])
    assert Counting.calls == 2


async def test_revealing_with_the_sealing_keys_needs_no_lookup() -> None:
    class NoLookups(MemoryKeyStore):
        async def keys(self, key_ids: Any) -> dict[uuid.UUID, bytes]:
            raise AssertionError("looked up keys")

    personal = PersonalData(POLICY, NoLookups())
    event = created()
    (sealed,), used = await personal.seal([event])
    (revealed,) = await personal.reveal([recorded(sealed)], used)
    assert revealed.data == event.data


async def test_what_a_seal_just_wrote_opens_without_decrypting(
    personal: PersonalData, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = created()
    (sealed,), used = await personal.seal([event])
    (older,), _ = await personal.seal([created(name="Ada before")])

    def no_decrypting(*args: object) -> object:
        raise AssertionError("decrypted a value the seal had just written")

    monkeypatch.setattr(personal_module, "_open", no_decrypting)
    (revealed,) = await personal.reveal([recorded(sealed)], used)
    assert revealed.data == event.data
    with pytest.raises(AssertionError, match="decrypted"):  # another seal's value is opened
        await personal.reveal([recorded(older)], used)
