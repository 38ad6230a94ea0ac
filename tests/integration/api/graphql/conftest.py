"""Fixtures: the whole service (API and workers) served over real HTTP and websockets."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from graphql_client import GraphQLServer, serve


@pytest.fixture
async def gql(sqlite_url: str) -> AsyncIterator[GraphQLServer]:
    """The whole service (API and workers) over SQLite."""
    async for server in serve(sqlite_url):
        yield server


@pytest.fixture(params=["sqlite", "postgres"])
async def gql_any(request: pytest.FixtureRequest) -> AsyncIterator[GraphQLServer]:
    """The whole service over SQLite and over PostgreSQL."""
    url = str(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url"))
    async for server in serve(url):
        yield server
