"""The fake carrier refuses country ZZ and books everything else once per key."""

from __future__ import annotations

import pytest

from cairn.orders.adapters import FakeCarrier, PermanentAdapterError

ADDRESS = {"line1": "1 Main St", "city": "Paris", "postal_code": "75001", "country": "FR"}


async def test_a_shipment_is_booked_with_a_tracking_number() -> None:
    booking = await FakeCarrier().create_shipment(
        idempotency_key="k", shipment_id="s1", order_id="o1", address=ADDRESS
    )
    assert booking.carrier == "fake-carrier"
    assert booking.tracking_number.startswith("TRK")


async def test_country_zz_is_refused_permanently() -> None:
    carrier = FakeCarrier()
    with pytest.raises(PermanentAdapterError, match="ZZ"):
        await carrier.create_shipment(
            idempotency_key="k",
            shipment_id="s1",
            order_id="o1",
            address={**ADDRESS, "country": "ZZ"},
        )
    assert carrier.ledger.count("create_shipment", "s1") == 0


async def test_a_resent_booking_returns_the_first_one() -> None:
    carrier = FakeCarrier()
    a = await carrier.create_shipment(
        idempotency_key="k", shipment_id="s1", order_id="o1", address=ADDRESS
    )
    b = await carrier.create_shipment(
        idempotency_key="k", shipment_id="s1", order_id="o1", address=ADDRESS
    )
    assert a == b
    assert carrier.ledger.count("create_shipment", "s1") == 1


async def test_cancelling_twice_with_one_key_is_one_cancellation() -> None:
    carrier = FakeCarrier()
    for _ in range(2):
        await carrier.cancel_shipment(idempotency_key="c", shipment_id="s1", tracking_number="TRK1")
    assert carrier.ledger.count("cancel_shipment", "s1") == 1
