"""Query helpers that need no database: cursors and search terms."""

from __future__ import annotations

import pytest

from cairn.errors import ApplicationError
from cairn.orders.read_models.orders import search_body, words
from cairn.orders.views import _decode_cursor, _encode_cursor


def test_a_cursor_round_trips_its_keyset_position() -> None:
    cursor = _encode_cursor("2026-11-26T10:00:00.000000+00:00", "o-1")
    assert _decode_cursor(cursor) == ("2026-11-26T10:00:00.000000+00:00", "o-1")


@pytest.mark.parametrize("bad", ["", "not-a-cursor", "W10"])
def test_a_foreign_cursor_is_a_client_error(bad: str) -> None:
    with pytest.raises(ApplicationError) as info:
        _decode_cursor(bad)
    assert info.value.code == "query.invalid_cursor"


def test_search_text_is_lower_case_words_of_number_customer_and_items() -> None:
    body = search_body(
        {
            "order_number": "ORD-2026-000123",
            "customer_name": "Ada Lovelace",
            "customer_email": "ada@example.com",
            "items": [{"sku": "MUG-1", "name": "Blue Mug"}],
        }
    )
    assert body == "ord 2026 000123 ada lovelace ada example com mug 1 blue mug"
    assert words("  ") == []
