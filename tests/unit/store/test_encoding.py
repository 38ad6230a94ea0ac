"""Payload encoding shared by every backend: what JSON cannot carry, or jsonb cannot store, is
refused before anything is written."""

from __future__ import annotations

import json

import pytest

from cairn.errors import InvalidEventError
from cairn.store.encoding import encode_json


@pytest.mark.parametrize("value", [{"a": "x\x00y"}, {"k\x00": 1}, {"deep": [{"x": "\\\x00"}]}])
def test_nul_characters_are_refused(value: dict[str, object]) -> None:
    with pytest.raises(InvalidEventError, match="NUL"):
        encode_json(value, "data")


@pytest.mark.parametrize("text", ["\\u0000", "\\\\u0000", "a\\u0000b"])
def test_literal_backslash_u0000_text_is_kept(text: str) -> None:
    assert json.loads(encode_json({"t": text}, "data")) == {"t": text}


def test_unicode_is_stored_unescaped() -> None:
    assert encode_json({"t": "日本語 🚀"}, "data") == '{"t":"日本語 🚀"}'


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf"), object(), b"x"])
def test_values_json_cannot_carry_are_refused(value: object) -> None:
    with pytest.raises(InvalidEventError, match="not JSON-serialisable"):
        encode_json({"v": value}, "data")


def test_a_non_object_is_refused() -> None:
    with pytest.raises(InvalidEventError, match="JSON object"):
        encode_json([1, 2], "metadata")  # type: ignore[arg-type]
