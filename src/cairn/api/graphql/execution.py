"""A faster path for plain fields: most of a page of orders is strings and numbers.

graphql-core resolves every field the same way: it builds a resolve-info object, coerces the
(absent) arguments, calls Strawberry's resolver wrapper, which calls the default resolver, and
completes the value, object by object. A field that Strawberry declares without a resolver,
arguments, permissions or field extensions is only an attribute read: a built-in scalar is
``serialize(getattr(source, name))``, and a list of objects whose selected fields are all
plain in turn (an order's ``items``, the ``nodes`` of a page of orders) is the same, item by
item. A page of 50 orders is over a thousand such fields, and graphql-core's machinery around
them is most of the request.

This execution context answers plain fields directly, and hands every other field to
graphql-core unchanged: fields with resolvers, arguments or directives, fragments, aliases
that repeat a response name, and any value the fast path cannot serialize or a null where the
schema says non-null (so that graphql-core reports it, with its path). The response keeps the
query's field order. None of cairn's schema extensions hooks field resolution, so skipping it
changes nothing they see.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from graphql import (
    FieldNode,
    GraphQLField,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    specified_scalar_types,
)

_BUILT_IN = frozenset(specified_scalar_types.values())


@dataclass(frozen=True, slots=True)
class _Leaf:
    attribute: str
    scalar: GraphQLScalarType
    non_null: bool


@dataclass(frozen=True, slots=True)
class _Objects:
    """A list of objects whose selected fields are all plain: ``(response name, plan)``."""

    attribute: str
    non_null: bool
    item_non_null: bool
    fields: tuple[tuple[str, _Leaf | _Objects], ...]


_Plan = _Leaf | _Objects


class _Fallback(Exception):
    """A value the fast path leaves to graphql-core (an error to report, with its path)."""


def _attribute(field: GraphQLField) -> str | None:
    """The Python attribute behind a plain field (no resolver, arguments, permissions or
    field extensions), else None."""
    definition = field.extensions.get("strawberry-definition")
    if (
        definition is None
        or definition.base_resolver is not None
        or definition.permission_classes
        or definition.extensions
        or field.args
    ):
        return None
    return str(definition.python_name)


def _plan(field: GraphQLField, node: FieldNode) -> _Plan | None:
    attribute = _attribute(field)
    if attribute is None or node.arguments or node.directives:
        return None
    non_null = isinstance(field.type, GraphQLNonNull)
    nullable = field.type.of_type if isinstance(field.type, GraphQLNonNull) else field.type
    if nullable in _BUILT_IN:
        return _Leaf(attribute, nullable, non_null)
    if not isinstance(nullable, GraphQLList) or node.selection_set is None:
        return None
    item = nullable.of_type
    item_non_null = isinstance(item, GraphQLNonNull)
    item_type = item.of_type if isinstance(item, GraphQLNonNull) else item
    if not isinstance(item_type, GraphQLObjectType):
        return None
    fields: list[tuple[str, _Plan]] = []
    for selection in node.selection_set.selections:
        if not isinstance(selection, FieldNode):
            return None  # fragments: graphql-core's
        sub = item_type.fields.get(selection.name.value)
        plan = None if sub is None else _plan(sub, selection)
        name = selection.alias.value if selection.alias else selection.name.value
        if plan is None or any(name == seen for seen, _ in fields):
            return None
        fields.append((name, plan))
    return _Objects(attribute, non_null, item_non_null, tuple(fields))


def _leaf(plan: _Leaf, source: Any) -> Any:
    value = getattr(source, plan.attribute, None)
    if value is None:
        if plan.non_null:
            raise _Fallback
        return None
    try:
        return plan.scalar.serialize(value)
    except Exception:
        raise _Fallback from None


def _objects(plan: _Objects, source: Any) -> Any:
    items = getattr(source, plan.attribute, None)
    if items is None:
        if plan.non_null:
            raise _Fallback
        return None
    result: list[Any] = []
    for item in items:
        if item is None:
            if plan.item_non_null:
                raise _Fallback
            result.append(None)
            continue
        result.append(
            {
                name: _leaf(sub, item) if isinstance(sub, _Leaf) else _objects(sub, item)
                for name, sub in plan.fields
            }
        )
    return result


class FastLeafExecutionContext(StrawberryGraphQLCoreExecutionContext):
    def _plans(
        self, parent_type: GraphQLObjectType, grouped_field_set: dict[str, Any]
    ) -> list[tuple[str, Any, _Plan | None]]:
        """Each field of the selection with its plan, worked out once per selection and type
        in this execution (graphql-core hands the items of a list the same selection object,
        and keeps it alive until the execution ends, so its id is a safe key here)."""
        cache: dict[tuple[int, str], list[tuple[str, Any, _Plan | None]]]
        cache = self.__dict__.setdefault("_plan_cache", {})
        key = (id(grouped_field_set), parent_type.name)
        plans = cache.get(key)
        if plans is None:
            plans = []
            for response_name, details in grouped_field_set.items():
                node = details[0].node
                field = parent_type.fields.get(node.name.value)
                single = len(details) == 1
                plan = _plan(field, node) if field is not None and single else None
                plans.append((response_name, details, plan))
            cache[key] = plans
        return plans

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Any,
        grouped_field_set: dict[str, Any],
        position_context: Any,
    ) -> Any:
        """Plain fields here; the rest, if any, through graphql-core; the response's fields
        in the query's order either way."""
        results: dict[str, Any] = {}
        rest: dict[str, Any] = {}
        for response_name, details, plan in self._plans(parent_type, grouped_field_set):
            if plan is not None:
                try:
                    if isinstance(plan, _Leaf):
                        results[response_name] = _leaf(plan, source_value)
                    else:
                        results[response_name] = _objects(plan, source_value)
                    continue
                except _Fallback:
                    pass
            rest[response_name] = details
        if not rest:
            return results
        others = super().execute_fields(parent_type, source_value, path, rest, position_context)
        if self.is_awaitable(others):

            async def merged() -> dict[str, Any]:
                return _in_order(grouped_field_set, results, await others)

            return merged()
        return _in_order(grouped_field_set, results, cast(dict[str, Any], others))


def _in_order(
    grouped_field_set: dict[str, Any], first: dict[str, Any], second: dict[str, Any]
) -> dict[str, Any]:
    if not first:
        return second
    both = first | second
    return {name: both[name] for name in grouped_field_set if name in both}
