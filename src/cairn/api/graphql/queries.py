"""``Query``: orders, one order, products and customer summaries, over the read models.

The rules are REST's: a customer sees only its own orders (another's is ``null``, as REST's
404 does not confirm it exists), filters for another customer are refused
(``auth.forbidden_customer``), products are for operators and admins, and ``minPosition`` waits
for the read model like REST's ``min_position`` (``app.read_model_behind`` when it does not
catch up in time).
"""

from __future__ import annotations

import strawberry

from cairn.api import services
from cairn.api.auth import Principal
from cairn.api.graphql.context import GraphQLContext, context_of
from cairn.api.graphql.federation import FederationFields
from cairn.api.graphql.limits import MAX_PAGE
from cairn.api.graphql.types import (
    CustomerSummary,
    Order,
    OrderConnection,
    Product,
    load_order,
    load_product,
)
from cairn.api.graphql.validation import bounded_text, non_negative
from cairn.api.problems import ProblemError

#: The most matches one search returns, as REST's ``/orders/search?limit=``.
MAX_SEARCH = 200


async def _read_your_writes(
    context: GraphQLContext, min_position: int | None, projection: str = "orders"
) -> Principal:
    principal = context.principal
    position = non_negative("minPosition", min_position)
    await services.wait_for_read_models(
        context.runtime, position, projection, waiter=principal.name
    )
    return principal


def _customer_filter(principal: Principal, customer_id: str | None) -> str | None:
    """As REST's: a customer lists its own orders, and asking for another's is refused."""
    if not principal.is_customer:
        return customer_id
    if customer_id is not None and customer_id != principal.customer_id:
        raise ProblemError(403, "auth.forbidden_customer", "customers see only their own orders")
    return principal.customer_id


@strawberry.type
class Query(FederationFields):
    @strawberry.field(description="Null when absent or not visible to the caller")
    async def order(
        self, info: strawberry.Info, id: strawberry.ID, min_position: int | None = None
    ) -> Order | None:
        await _read_your_writes(context_of(info), min_position)
        return await load_order(info, bounded_text("id", id, 100))

    @strawberry.field(description="Newest first; pass endCursor as after for the next page")
    async def orders(
        self,
        info: strawberry.Info,
        customer_id: strawberry.ID | None = None,
        status: str | None = None,
        first: int | None = 50,
        after: str | None = None,
        min_position: int | None = None,
    ) -> OrderConnection:
        context = context_of(info)
        principal = await _read_your_writes(context, min_position)
        first = 50 if first is None else first
        if not 1 <= first <= MAX_PAGE:
            raise ProblemError(422, "app.validation", f"first must be 1 to {MAX_PAGE}")
        page = await services.list_orders(
            context.runtime,
            customer_id=_customer_filter(
                principal,
                None if customer_id is None else bounded_text("customerId", customer_id, 100),
            ),
            status=None if status is None else bounded_text("status", status, 20),
            created_from=None,
            created_to=None,
            cursor=None if after is None else bounded_text("after", after, 200),
            limit=first,
        )
        context.loaders.prime_orders(page["orders"])
        return OrderConnection(
            nodes=[Order.from_view(view) for view in page["orders"]],
            end_cursor=page["next_cursor"],
            has_next_page=page["next_cursor"] is not None,
        )

    @strawberry.field(description="Full-text search (number, customer, SKUs, item names)")
    async def search_orders(
        self, info: strawberry.Info, q: str, first: int = 20, min_position: int | None = None
    ) -> list[Order]:
        context = context_of(info)
        principal = await _read_your_writes(context, min_position)
        if not 1 <= first <= MAX_SEARCH:
            raise ProblemError(422, "app.validation", f"first must be 1 to {MAX_SEARCH}")
        found = await services.search_orders(
            context.runtime,
            bounded_text("q", q, 200),
            limit=first,
            customer_id=_customer_filter(principal, None),
        )
        context.loaders.prime_orders(found)
        return [Order.from_view(view) for view in found]

    @strawberry.field(description="A catalogue entry and its stock (operators and admins)")
    async def product(self, info: strawberry.Info, sku: strawberry.ID) -> Product | None:
        return await load_product(info, bounded_text("sku", sku, 64))

    @strawberry.field(description="Null when the customer has no orders or is not the caller")
    async def customer_summary(
        self, info: strawberry.Info, customer_id: strawberry.ID, min_position: int | None = None
    ) -> CustomerSummary | None:
        context = context_of(info)
        principal = await _read_your_writes(context, min_position, "customers")
        customer = bounded_text("customerId", customer_id, 100)
        if not principal.can_see_customer(customer):
            return None
        summary = await services.customer_summary(context.runtime, customer)
        return None if summary is None else CustomerSummary.from_view(summary)
