"""The schema: SPEC §14's types, an Apollo Federation 2 subgraph, with cairn's limits and codes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from strawberry.extensions import (
    AddValidationRules,
    MaxTokensLimiter,
    ParserCache,
    SchemaExtension,
    ValidationCache,
)
from strawberry.federation import Schema
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from cairn.api.graphql.errors import label
from cairn.api.graphql.execution import FastLeafExecutionContext
from cairn.api.graphql.limits import CostLimit, Limits, limit_rules
from cairn.api.graphql.mutations import Mutation
from cairn.api.graphql.queries import Query
from cairn.api.graphql.subscriptions import Subscription
from cairn.api.graphql.types import Product
from graphql import GraphQLError

#: The Federation 2 version the subgraph declares in its ``@link``.
FEDERATION_VERSION: Final = "2.7"


class CairnSchema(Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Label each error with its code (errors.py); unexpected ones are logged there."""
        for error in errors:
            label(error)


def build_schema(limits: Limits | None = None) -> CairnSchema:
    limits = limits or Limits()
    rules = limit_rules(limits)
    # Factories: an extension per request (the parse and validation caches are shared).
    extensions: list[Callable[[], SchemaExtension]] = [
        lambda: MaxTokensLimiter(max_token_count=limits.max_tokens),
        lambda: ParserCache(maxsize=256),
        lambda: AddValidationRules(rules),
        lambda: ValidationCache(maxsize=256),
        lambda: CostLimit(limits),  # after ValidationCache: see CostLimit
    ]
    return CairnSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[Product],
        federation_version=FEDERATION_VERSION,
        execution_context_class=FastLeafExecutionContext,
        config=StrawberryConfig(batching_config={"max_operations": limits.max_operations}),
        extensions=extensions,
    )
