"""A list of orders with their lines and products costs a bounded number of SQL queries: the
page, then one read of every product named (DataLoader batching), however many orders."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from graphql_client import ADMIN, GraphQLServer

from cairn.orders.views import ReadModelQueries

ORDERS_WITH_PRODUCTS = """
query L($first: Int!, $min: Int) {
  orders(first: $first, minPosition: $min) {
    nodes { id status items { sku quantity product { sku name price available } } }
  }
}"""


class CountingDatabase:
    """The read side's database, counting the statements run through it."""

    def __init__(self, db: Any) -> None:
        self._db = db
        self.statements: list[str] = []

    async def fetchall(self, sql: str, params: Any = ()) -> Any:
        self.statements.append(sql)
        return await self._db.fetchall(sql, params)

    async def fetchone(self, sql: str, params: Any = ()) -> Any:
        self.statements.append(sql)
        return await self._db.fetchone(sql, params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


@contextmanager
def counting(gql: GraphQLServer) -> Iterator[CountingDatabase]:
    queries = gql.app.state.runtime.components.projections.queries
    assert isinstance(queries, ReadModelQueries)
    real = queries.db
    counter = CountingDatabase(real)
    queries.db = counter  # type: ignore[assignment]
    try:
        yield counter
    finally:
        queries.db = real


async def _statements_for(gql: GraphQLServer, first: int, min_position: int) -> list[str]:
    variables = {"first": first, "min": min_position}
    with counting(gql) as counter:
        data = await gql.data(ORDERS_WITH_PRODUCTS, variables, ADMIN)
    nodes = data["orders"]["nodes"]
    assert len(nodes) == first
    assert all(line["product"]["name"] == "Mug" for n in nodes for line in n["items"])
    return counter.statements


async def test_fifty_orders_with_products_cost_as_many_queries_as_one(gql: GraphQLServer) -> None:
    await gql.register_product("MUG-1")
    await gql.register_product("MUG-2")
    last: dict[str, Any] = {}
    for _ in range(50):
        last = await gql.create_order(
            ADMIN, items=[{"sku": "MUG-1", "quantity": 1}, {"sku": "MUG-2", "quantity": 2}]
        )
    one = await _statements_for(gql, 1, last["position"])
    fifty = await _statements_for(gql, 50, last["position"])
    assert len(fifty) == len(one) <= 4
    assert sum("IN (" in sql for sql in fifty) == 1  # every product in one read
