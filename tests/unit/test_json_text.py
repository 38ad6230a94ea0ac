"""``cairn.json_text.compact``: the text of saga rows, read-model rows and responses reads back
as the value written, whatever orjson can or cannot write itself."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cairn.json_text import compact

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(JSON_VALUES)
def test_any_json_value_reads_back_equal(value: Any) -> None:
    assert json.loads(compact(value)) == value


def test_the_text_is_compact_and_keeps_non_ascii_as_is() -> None:
    assert compact({"name": "Zoë", "items": [1, 2]}) == '{"name":"Zoë","items":[1,2]}'


def test_integers_beyond_64_bits_are_written_exactly() -> None:
    assert json.loads(compact({"n": 2**70, "m": -(2**70)})) == {"n": 2**70, "m": -(2**70)}


def test_non_string_keys_become_strings_as_the_standard_encoder_writes_them() -> None:
    assert compact({1: "a", None: "b"}) == json.dumps(
        {1: "a", None: "b"}, ensure_ascii=False, separators=(",", ":")
    )


def test_default_writes_a_datetime_as_the_standard_encoder_would() -> None:
    value = {"at": datetime(2026, 12, 6, 15, 0, tzinfo=UTC), "attempt": 2}
    assert compact(value, default=str) == json.dumps(
        value, ensure_ascii=False, separators=(",", ":"), default=str
    )


def test_a_value_json_has_no_type_for_is_refused_without_a_default() -> None:
    with pytest.raises(TypeError):
        compact({"when": datetime(2026, 12, 6, tzinfo=UTC)})
