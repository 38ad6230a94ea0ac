"""The second prefetch round: rows whose keys only the first round's rows tell."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from cairn.orders.read_models.analytics import (
    CUSTOMER_SALES,
    SALES_DAILY,
    SALES_ORDERS,
    AnalyticsModel,
)
from cairn.orders.read_models.customers import CUSTOMER_ORDERS, SUMMARY, CustomersModel
from cairn.projections.read_model import Key
from cairn.sql.database import Row
from cairn.store.base import RecordedEvent

DAY = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


def event(kind: str, order_id: str, position: int, **data: Any) -> RecordedEvent:
    return RecordedEvent(
        id=uuid.uuid4(),
        stream_id=f"order-{order_id}",
        type=kind,
        data={"order_id": order_id, **data},
        metadata={},
        version=1,
        position=position,
        recorded_at=DAY,
    )


def loaded_from(rows: dict[tuple[str, Key], Row]) -> Any:
    return lambda table, key: rows.get((table, key))


def test_analytics_names_the_day_and_customer_rows_of_sales_and_cancellations() -> None:
    before = {
        (SALES_ORDERS.base, ("o2",)): {"customer_id": "c2", "currency": "USD", "counted": 0},
        (SALES_ORDERS.base, ("o3",)): {
            "customer_id": "c3",
            "currency": "GBP",
            "counted": 1,
            "day": "2026-11-01",
        },
    }
    batch = [
        event("OrderCreated", "o1", 1, customer_id="c1", currency="EUR"),
        event("OrderPlaced", "o1", 2, total="5.00"),
        event("OrderPlaced", "o2", 3, total="7.00"),
        event("OrderCancelled", "o3", 4),
        event("OrderPlaced", "o-unknown", 5, total="1.00"),
    ]

    keys = set(AnalyticsModel().prefetch_more(batch, loaded_from(before)))

    assert keys == {
        (SALES_DAILY.base, ("2026-11-26", "EUR")),
        (CUSTOMER_SALES.base, ("c1", "EUR")),
        (SALES_DAILY.base, ("2026-11-26", "USD")),
        (CUSTOMER_SALES.base, ("c2", "USD")),
        (SALES_DAILY.base, ("2026-11-01", "GBP")),
        (CUSTOMER_SALES.base, ("c3", "GBP")),
    }


def test_customers_names_the_summary_of_an_order_placed_in_an_earlier_batch() -> None:
    before = {(CUSTOMER_ORDERS.base, ("o2",)): {"customer_id": "c2"}}
    batch = [event("OrderPlaced", "o2", 1, total="7.00"), event("OrderPlaced", "o9", 2)]

    keys = list(CustomersModel().prefetch_more(batch, loaded_from(before)))

    assert keys == [(SUMMARY.base, ("c2",))]
