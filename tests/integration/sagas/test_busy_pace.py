"""While sagas run side by side, the runner pauses briefly after a transition of several
messages, so that the messages arriving meanwhile share the next transaction; a lone saga's
transitions (one message each) never wait."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from saga_harness import backend_url, running

from cairn.sagas import runner as runner_module

PACE = 0.3


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest) -> str:
    return backend_url(request, str(request.param))


def record_transitions(world: Any) -> list[tuple[float, float, int]]:
    """Every transition from now on: when it began, when it ended, how many messages."""
    runner = world.runner
    seen: list[tuple[float, float, int]] = []
    transition = runner._transition

    async def recording(ours: list[Any], checkpoint: str, position: int) -> list[Any]:
        began = time.monotonic()
        try:
            return list(await transition(ours, checkpoint, position))
        finally:
            seen.append((began, time.monotonic(), len(ours)))

    runner._transition = recording
    return seen


async def test_a_transition_of_several_messages_is_followed_by_a_pause(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner_module, "BUSY_PACE", PACE)
    async with running(url) as w:
        await w.product("MUG", 100)
        seen = record_transitions(w)

        orders = await asyncio.gather(*(w.order({"MUG": 1}) for _ in range(6)))
        for order in orders:
            await w.wait(order, "completed", timeout=60)

    busy = [i for i, (_, _, messages) in enumerate(seen[:-1]) if messages > 1]
    assert busy, seen
    for i in busy:
        assert seen[i + 1][0] - seen[i][1] >= PACE * 0.9, seen


async def test_a_lone_sagas_transitions_never_wait(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner_module, "BUSY_PACE", 30.0)
    async with running(url) as w:
        await w.product("MUG", 10)
        seen = record_transitions(w)

        order = await w.order({"MUG": 1})
        record = await w.wait(order, "completed", timeout=20)

    assert record.data["outcome"] == "confirmed"
    assert all(messages == 1 for _, _, messages in seen), seen
