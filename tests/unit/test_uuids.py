"""cairn.uuids makes exactly the ids uuid.uuid5 makes (they name streams and events already
stored), only faster."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cairn.uuids import uuid5, uuid5_text

_NAMES = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)


@given(namespace=st.uuids(), name=_NAMES)
def test_the_text_is_uuid5s_for_a_namespace_given_as_a_uuid(
    namespace: uuid.UUID, name: str
) -> None:
    assert uuid5_text(namespace, name) == str(uuid.uuid5(namespace, name))


@given(namespace=st.uuids(), name=_NAMES)
def test_the_text_is_uuid5s_for_a_namespace_given_as_text(namespace: uuid.UUID, name: str) -> None:
    assert uuid5_text(str(namespace), name) == str(uuid.uuid5(namespace, name))


@given(namespace=st.uuids(), name=_NAMES)
def test_the_uuid_is_uuid5s(namespace: uuid.UUID, name: str) -> None:
    made = uuid5(str(namespace), name)
    assert made == uuid.uuid5(namespace, name)
    assert made.version == 5


def test_a_namespace_that_is_not_a_uuid_is_refused() -> None:
    with pytest.raises(ValueError, match="badly formed"):
        uuid5_text("not-a-uuid", "step")
