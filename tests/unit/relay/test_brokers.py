"""The confirmation bookkeeping every publisher relies on: a failed batch reports exactly the
confirmed prefix, so the checkpoint never passes an unconfirmed event."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from cairn.relay.brokers import (
    PublishError,
    UnsupportedBrokerURL,
    _AckTracker,
    _await_all,
    publisher_for,
)


async def test_tracker_confirms_the_batch_once_every_message_is_acked_in_any_order() -> None:
    tracker = _AckTracker(3)
    for index in (2, 0, 1):
        assert not tracker.done.done()
        tracker.ack(index)
    assert tracker.done.done()
    assert tracker.confirmed_prefix() == 3


async def test_tracker_prefix_stops_at_the_first_unacked_message() -> None:
    tracker = _AckTracker(4)
    tracker.ack(0)
    tracker.ack(1)
    tracker.ack(3)
    assert tracker.confirmed_prefix() == 2


async def test_a_duplicate_ack_does_not_count_twice() -> None:
    tracker = _AckTracker(2)
    tracker.ack(0)
    tracker.ack(0)
    assert not tracker.done.done()


async def _resolved(value: object) -> object:
    return value


async def _failing() -> None:
    raise ConnectionError("gone")


async def test_await_all_reports_the_prefix_before_the_first_failure() -> None:
    futures = [
        asyncio.ensure_future(_resolved(1)),
        asyncio.ensure_future(_resolved(2)),
        asyncio.ensure_future(_failing()),
        asyncio.ensure_future(_resolved(4)),
    ]
    with pytest.raises(PublishError) as raised:
        await _await_all(futures, 1.0, "test")
    assert raised.value.confirmed == 2


async def test_await_all_times_out_with_the_prefix_and_cancels_the_rest() -> None:
    never: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    futures: list[asyncio.Future[Any]] = [asyncio.ensure_future(_resolved(1)), never]
    with pytest.raises(PublishError, match="no confirmation within") as raised:
        await _await_all(futures, 0.05, "test")
    assert raised.value.confirmed == 1
    assert never.cancelled()


def test_topic_with_spaces_is_refused() -> None:
    with pytest.raises(UnsupportedBrokerURL, match="topic"):
        publisher_for("nats://127.0.0.1:4222", "cairn events")
