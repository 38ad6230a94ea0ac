"""The hub behind ``orderStatusChanged``: one live ``$all`` subscription, fanned out by stream,
over every store backend."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from cairn.api.graphql.hub import StreamHub
from cairn.errors import ApplicationError
from cairn.store.base import NewEvent


async def _append(store: Any, stream: str, *types: str) -> None:
    await store.append(stream, [NewEvent(type=t, data={"n": i}) for i, t in enumerate(types)])


async def test_a_listener_gets_its_streams_events_in_order_and_no_others(store: Any) -> None:
    hub = StreamHub(store)
    try:
        async with hub.listen("order-a") as listener:
            await _append(store, "order-b", "Other")
            await _append(store, "order-a", "First", "Second")
            await _append(store, "order-a", "Third")
            got = [await asyncio.wait_for(listener.next(), 10) for _ in range(3)]
        assert [(e.stream_id, e.type, e.version) for e in got] == [
            ("order-a", "First", 1),
            ("order-a", "Second", 2),
            ("order-a", "Third", 3),
        ]
        assert listener.queue.empty()
    finally:
        await hub.close()


async def test_many_listeners_share_one_store_subscription(store: Any) -> None:
    hub = StreamHub(store)
    try:
        streams = [f"order-{n}" for n in range(20)]
        async with contextlib.AsyncExitStack() as stack:
            listeners = [await stack.enter_async_context(hub.listen(s)) for s in streams]
            assert hub.listener_count == len(streams)
            for stream in streams:
                await _append(store, stream, "Changed")
            for stream, listener in zip(streams, listeners, strict=True):
                event = await asyncio.wait_for(listener.next(), 10)
                assert event.stream_id == stream
        assert hub.subscriptions_opened == 1
        assert hub.listener_count == 0
    finally:
        await hub.close()


async def test_closing_the_hub_interrupts_its_listeners(store: Any) -> None:
    hub = StreamHub(store)
    async with hub.listen("order-a") as listener:
        waiting = asyncio.ensure_future(listener.next())
        await asyncio.sleep(0)
        await hub.close()
        with pytest.raises(ApplicationError) as interrupted:
            await asyncio.wait_for(waiting, 10)
    assert interrupted.value.code == "subscription.interrupted"


async def test_a_listener_that_falls_too_far_behind_is_dropped(store: Any) -> None:
    hub = StreamHub(store, max_backlog=2)
    try:
        async with hub.listen("order-a") as listener:
            await _append(store, "order-a", "One", "Two", "Three")
            assert (await asyncio.wait_for(listener.next(), 10)).type == "One"
            assert (await listener.next()).type == "Two"
            with pytest.raises(ApplicationError, match="behind"):
                await asyncio.wait_for(listener.next(), 10)
            assert hub.listener_count == 0
    finally:
        await hub.close()


async def test_the_hub_stops_reading_when_the_last_listener_leaves(store: Any) -> None:
    hub = StreamHub(store)
    try:
        async with hub.listen("order-a"):
            assert hub.following
        assert not hub.following
        async with hub.listen("order-a") as listener:
            await _append(store, "order-a", "Later")
            assert (await asyncio.wait_for(listener.next(), 10)).type == "Later"
        assert hub.subscriptions_opened == 2
    finally:
        await hub.close()
