"""An app over an in-memory store: the API layer's own behaviour, no services needed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from api_tokens import TOKENS

from cairn.api.app import create_app
from cairn.orders.bootstrap import bootstrap
from cairn.settings import Settings
from cairn.store.memory import MemoryEventStore


@pytest.fixture
def bare_store() -> MemoryEventStore:
    return MemoryEventStore()


@pytest.fixture
async def bare_client(bare_store: MemoryEventStore) -> AsyncIterator[httpx.AsyncClient]:
    """The API over an in-memory container, without workers (nothing runs in the background)."""
    settings = Settings(database_url="memory://", tokens=TOKENS, max_body_bytes=2048)
    container = await bootstrap(settings, store=bare_store)
    app = create_app(settings, container, run_workers=False)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://cairn") as client:
                yield client
    finally:
        await container.close()
