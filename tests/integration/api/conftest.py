"""The whole application (API and workers) over SQLite and over PostgreSQL, in process."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from cairn.api.app import create_app
from cairn.orders.bootstrap import bootstrap
from cairn.settings import Settings

TOKENS = "adm=admin,ops=operator"
ADMIN = {"Authorization": "Bearer adm"}


@pytest.fixture(params=["sqlite", "postgres"])
async def app_client(request: pytest.FixtureRequest) -> AsyncIterator[httpx.AsyncClient]:
    url = str(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url"))
    settings = Settings(database_url=url, tokens=TOKENS)
    container = await bootstrap(settings)
    app = create_app(settings, container, run_workers=True)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://cairn") as client:
                yield client
    finally:
        await container.close()
