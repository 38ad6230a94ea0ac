"""Shipment: one stream per order's shipment (``shipment-<shipment_id>``, id derived from the
order). The carrier is an adapter outside the domain: CreateShipment records its answer.
Cancelling a cancelled shipment is a harmless no-op (compensations may be repeated).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, assert_never

from cairn.decider import FunctionDecider
from cairn.errors import DomainError, NotFoundError
from cairn.orders.domain.common import check_id, check_text
from cairn.orders.domain.ids import shipment_id_for

# --- commands --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreateShipment:
    order_id: str
    carrier: str
    tracking_number: str

    @property
    def shipment_id(self) -> str:
        return shipment_id_for(self.order_id)


@dataclass(frozen=True, slots=True)
class CancelShipment:
    order_id: str
    reason: str = ""

    @property
    def shipment_id(self) -> str:
        return shipment_id_for(self.order_id)


@dataclass(frozen=True, slots=True)
class MarkDelivered:
    order_id: str

    @property
    def shipment_id(self) -> str:
        return shipment_id_for(self.order_id)


ShipmentCommand = CreateShipment | CancelShipment | MarkDelivered

# --- events ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ShipmentCreated:
    shipment_id: str
    order_id: str
    carrier: str
    tracking_number: str


@dataclass(frozen=True, slots=True)
class ShipmentCancelled:
    shipment_id: str
    order_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class ShipmentDelivered:
    shipment_id: str
    order_id: str


ShipmentEvent = ShipmentCreated | ShipmentCancelled | ShipmentDelivered

# --- state -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NoShipment:
    status: ClassVar[str] = "none"


@dataclass(frozen=True, slots=True)
class CreatedShipment:
    status: ClassVar[str] = "created"
    shipment_id: str
    order_id: str
    carrier: str
    tracking_number: str


@dataclass(frozen=True, slots=True)
class CancelledShipment:
    status: ClassVar[str] = "cancelled"
    shipment_id: str
    order_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class DeliveredShipment:
    status: ClassVar[str] = "delivered"
    shipment_id: str
    order_id: str


ShipmentState = NoShipment | CreatedShipment | CancelledShipment | DeliveredShipment

# --- decide ----------------------------------------------------------------------------------


def initial_state() -> ShipmentState:
    return NoShipment()


def validate(command: ShipmentCommand) -> None:
    check_id(command.order_id, "order_id")
    match command:
        case CreateShipment():
            check_text(command.carrier, "carrier", limit=100)
            check_text(command.tracking_number, "tracking_number", limit=200)
        case CancelShipment():
            check_text(command.reason, "reason", required=False)
        case MarkDelivered():
            pass
        case _:
            assert_never(command)


def decide(command: ShipmentCommand, state: ShipmentState) -> list[ShipmentEvent]:
    validate(command)
    sid = command.shipment_id
    match command, state:
        case CreateShipment(), NoShipment():
            return [
                ShipmentCreated(sid, command.order_id, command.carrier, command.tracking_number)
            ]
        case CreateShipment(), _:
            raise DomainError(
                "shipment.already_created",
                f"order {command.order_id} already has a shipment",
            )
        case _, NoShipment():
            raise NotFoundError("shipment.not_found", f"order {command.order_id} has no shipment")
        case CancelShipment(), CreatedShipment():
            return [ShipmentCancelled(sid, command.order_id, command.reason)]
        case CancelShipment(), CancelledShipment():
            return []  # compensations may be repeated
        case CancelShipment() | MarkDelivered(), DeliveredShipment():
            raise DomainError(
                "shipment.already_delivered",
                f"the shipment of order {command.order_id} is delivered",
            )
        case MarkDelivered(), CreatedShipment():
            return [ShipmentDelivered(sid, command.order_id)]
        case MarkDelivered(), CancelledShipment():
            raise DomainError(
                "shipment.cancelled", f"the shipment of order {command.order_id} was cancelled"
            )
    raise DomainError(
        "shipment.invalid_transition",
        f"{type(command).__name__} is not allowed for a shipment that is {state.status}",
        status=state.status,
    )


# --- evolve ----------------------------------------------------------------------------------


def evolve(state: ShipmentState, event: ShipmentEvent) -> ShipmentState:
    match event:
        case ShipmentCreated():
            return CreatedShipment(
                event.shipment_id, event.order_id, event.carrier, event.tracking_number
            )
        case ShipmentCancelled():
            return CancelledShipment(event.shipment_id, event.order_id, event.reason)
        case ShipmentDelivered():
            return DeliveredShipment(event.shipment_id, event.order_id)
        case _:
            assert_never(event)


decider: FunctionDecider[ShipmentCommand, ShipmentState, ShipmentEvent] = FunctionDecider(
    decide, evolve, initial_state
)


def stream_id(shipment_id: str) -> str:
    return f"shipment-{shipment_id}"
