"""Waiting for an ``asyncio.Event`` with a timeout, the one way cairn does it.

``asyncio.timeout``, not ``asyncio.wait_for``: on Python 3.11 ``wait_for`` returns normally when
the awaited event is set in the same loop iteration as a cancellation arrives (CPython
gh-86296). The store's, the projections' and the sagas' wait loops are woken all the time under
load, so a worker cancelled at shutdown could survive and keep the process alive.
"""

from __future__ import annotations

import asyncio


async def wait_set(event: asyncio.Event, timeout: float) -> bool:
    """Wait until ``event`` is set or ``timeout`` seconds pass; whether it was set."""
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        return False
    return True
