"""Properties of the fulfilment saga that hold on every path, checked over generated histories."""

from __future__ import annotations

from dataclasses import dataclass

from fulfilment_builders import (
    AUTHORIZED,
    BOOKED,
    CAPTURED,
    CONFIRMED,
    DEADLINE,
    RETRY,
    SAGA,
    Then,
    cancelled,
    declined,
    failed,
    given,
    out_of_stock,
    placed,
    reserved,
    succeeded,
    when,
)
from hypothesis import given as for_all
from hypothesis import strategies as st

from cairn.orders.fulfilment import Fulfilment
from cairn.sagas.engine import Message, SagaStatus

SKUS = ("A", "B", "C", "D")


@dataclass(frozen=True)
class Progress:
    """How far the forward steps got before something went wrong."""

    skus: tuple[str, ...]
    reserved: tuple[str, ...]
    authorized: bool
    booked: bool

    def history(self) -> list[Message]:
        messages = [placed(*((sku, 1) for sku in self.skus))]
        messages += [reserved(sku) for sku in self.reserved]
        if self.authorized:
            messages.append(AUTHORIZED)
        if self.booked:
            messages.append(BOOKED)
        return messages


@st.composite
def progress(draw: st.DrawFn) -> Progress:
    skus = tuple(draw(st.lists(st.sampled_from(SKUS), min_size=1, max_size=4, unique=True)))
    done = tuple(sku for sku in skus if draw(st.booleans()))
    authorized = set(done) == set(skus) and draw(st.booleans())
    return Progress(skus, done, authorized, authorized and draw(st.booleans()))


def failure(draw: st.DrawFn, state: Fulfilment) -> Message:
    """Something that starts compensation of a running saga."""
    in_flight = sorted(state.awaiting)
    return draw(
        st.sampled_from([DEADLINE, cancelled("bye"), *(failed(step, "boom") for step in in_flight)])
    )


def settle(then: Then) -> tuple[list[str], Then]:
    """Answer every compensation with success and every forward step still in flight with a
    failure, until the saga asks for nothing more; the compensations in the order sent."""
    order: list[str] = []
    while then.sends or (then.status is SagaStatus.COMPENSATING and then.state.awaiting):
        if then.sends:
            assert len(then.sends) == 1, then.steps  # one compensation at a time
            order.append(then.sends[0].step)
            then = when(then.state, succeeded(then.sends[0].step))
        else:
            then = when(then.state, failed(sorted(then.state.awaiting)[0], "no answer"))
    return order, then


@for_all(progress(), st.data())
def test_compensation_undoes_exactly_what_was_done_newest_first(
    done: Progress, data: st.DataObject
) -> None:
    state = given(*done.history())
    trigger = failure(data.draw, state)
    order, then = settle(when(state, trigger))
    expected = [
        *(["cancel_shipment"] if done.booked else []),
        *(["void"] if done.authorized else []),
        *(f"release:{sku}" for sku in done.reserved),  # each reserved SKU, once, none other
        *([] if trigger.type == "OrderCancelled" else ["cancel_order"]),
    ]
    assert order == expected
    assert then.state.outcome == "cancelled"
    assert then.status is (SagaStatus.TIMED_OUT if trigger is DEADLINE else SagaStatus.COMPLETED)


#: Everything that can still reach a saga once its order is cancelled (the order can no longer
#: be confirmed or shipped), redeliveries included.
AFTERWARDS = [
    *(reserved(sku) for sku in SKUS),
    out_of_stock("A", 1, 0),
    AUTHORIZED,
    declined("late"),
    BOOKED,
    CAPTURED,
    cancelled("again"),
    DEADLINE,
    RETRY,
    *(succeeded(step) for step in ("release:A", "void", "cancel_shipment", "cancel_order")),
    *(failed(step, "x", compensation=True) for step in ("release:A", "void", "cancel_order")),
    *(failed(step, "x") for step in ("reserve:A", "authorize", "create_shipment", "confirm")),
]


@for_all(progress(), st.data(), st.lists(st.sampled_from(AFTERWARDS), max_size=12))
def test_a_cancelled_saga_never_sends_another_command(
    done: Progress, data: st.DataObject, later: list[Message]
) -> None:
    state = given(*done.history())
    _, then = settle(when(state, failure(data.draw, state)))
    status = then.status
    for message in later:
        then = when(then.state, message)
        assert then.sends == ()
        assert then.status is status


#: Every message of one order's saga, in any order: histories the runner could deliver.
ANY = [
    placed(("A", 1), ("B", 2)),
    reserved("A"),
    reserved("B", 2),
    out_of_stock("B", 2, 1),
    AUTHORIZED,
    declined("no"),
    BOOKED,
    CONFIRMED,
    CAPTURED,
    cancelled("bye"),
    DEADLINE,
    RETRY,
    *(succeeded(step) for step in ("release:A", "release:B", "void", "cancel_order")),
    *(failed(step, "x", compensation=True) for step in ("release:A", "void", "cancel_order")),
    *(failed(step, "x") for step in ("reserve:B", "authorize", "create_shipment", "confirm")),
]


@for_all(st.lists(st.sampled_from(ANY), max_size=20), st.sampled_from(ANY))
def test_a_message_handled_twice_changes_nothing_the_second_time(
    history: list[Message], message: Message
) -> None:
    once = when(given(*history), message)
    twice = when(once.state, message)
    assert twice.sends == ()
    assert twice.state == once.state


@for_all(st.lists(st.sampled_from(ANY), max_size=20))
def test_every_reachable_state_survives_a_dump_and_load(history: list[Message]) -> None:
    state = given(*history)
    assert SAGA.load(SAGA.dump(state)) == state
