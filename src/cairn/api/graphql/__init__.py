"""GraphQL at ``/graphql`` (SPEC §14): one more adapter over the application layer, beside REST.

router.py         the FastAPI router (HTTP and websockets), its lifespan
schema.py         the federated schema, its limits and error codes
types.py          Order, Product (federation entities), OrderLine, inputs …
queries.py        Query              mutations.py      Mutation
subscriptions.py  Subscription.orderStatusChanged, fed by hub.py
context.py        the caller (REST's bearer tokens) and the request's loaders.py
limits.py         depth, cost, aliases         errors.py    extensions.code
validation.py     REST's request models and codes for arguments
"""

from cairn.api.graphql.router import graphql_router

__all__ = ["graphql_router"]
