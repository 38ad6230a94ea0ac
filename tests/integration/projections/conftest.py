from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

import cairn
from cairn.orders.components import OrderProjections, build_projections
from cairn.projections import RunnerConfig
from cairn.store.base import EventStore


@pytest.fixture
async def engine(store: EventStore, store_url: str) -> AsyncIterator[OrderProjections]:
    eng = build_projections(store_url, store, config=RunnerConfig(retry_backoff=0.001))
    try:
        yield eng
    finally:
        await eng.close()


__all__ = ["cairn"]
