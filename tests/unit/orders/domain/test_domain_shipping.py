"""Shipment: one per order, the carrier's answer recorded; given / when / then."""

from cairn.decider.testing import given
from cairn.orders.domain import shipping as s
from cairn.orders.domain.ids import shipment_id_for

ORDER = "order-1"
SID = shipment_id_for(ORDER)
CREATED = s.ShipmentCreated(SID, ORDER, "fake-carrier", "TRK-1")


def test_the_shipment_id_is_derived_from_the_order_id() -> None:
    assert shipment_id_for(ORDER) == SID
    assert shipment_id_for(ORDER) != shipment_id_for("order-2")


def test_creating_a_shipment_records_the_carrier_booking() -> None:
    given(s.decider).when(s.CreateShipment(ORDER, "fake-carrier", "TRK-1")).then([CREATED])


def test_a_shipment_is_created_at_most_once() -> None:
    given(s.decider, [CREATED]).when(s.CreateShipment(ORDER, "x", "y")).then_fails(
        "shipment.already_created"
    )


def test_a_booking_needs_a_carrier_and_tracking_number() -> None:
    given(s.decider).when(s.CreateShipment(ORDER, "", "TRK-1")).then_fails("carrier.invalid")
    given(s.decider).when(s.CreateShipment(ORDER, "c", "")).then_fails("tracking_number.invalid")


def test_cancelling_a_shipment_records_the_reason() -> None:
    given(s.decider, [CREATED]).when(s.CancelShipment(ORDER, "payment declined")).then(
        [s.ShipmentCancelled(SID, ORDER, "payment declined")]
    )


def test_cancelling_twice_is_a_harmless_no_op() -> None:
    history = [CREATED, s.ShipmentCancelled(SID, ORDER, "")]
    given(s.decider, history).when(s.CancelShipment(ORDER)).then([])


def test_a_delivered_shipment_cannot_be_cancelled() -> None:
    history = [CREATED, s.ShipmentDelivered(SID, ORDER)]
    given(s.decider, history).when(s.CancelShipment(ORDER)).then_fails("shipment.already_delivered")


def test_marking_delivered() -> None:
    given(s.decider, [CREATED]).when(s.MarkDelivered(ORDER)).then([s.ShipmentDelivered(SID, ORDER)])


def test_a_cancelled_shipment_is_never_delivered() -> None:
    history = [CREATED, s.ShipmentCancelled(SID, ORDER, "")]
    given(s.decider, history).when(s.MarkDelivered(ORDER)).then_fails("shipment.cancelled")


def test_commands_on_a_missing_shipment_are_not_found() -> None:
    given(s.decider).when(s.MarkDelivered(ORDER)).then_fails("shipment.not_found")
    given(s.decider).when(s.CancelShipment(ORDER)).then_fails("shipment.not_found")
