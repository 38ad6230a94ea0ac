"""A faster path for plain leaf fields: most of a page of orders is strings and numbers.

graphql-core resolves every field the same way: it builds a resolve-info object, coerces the
(absent) arguments, calls Strawberry's resolver wrapper, which calls the default resolver, and
completes the value. For a field that Strawberry declares without a resolver, arguments,
permissions or field extensions, and whose type is a built-in scalar, all of that reduces to
``serialize(getattr(source, name))``; a list of 50 orders has over a thousand such fields, and
that overhead is most of the request. This context does exactly that for such fields (before
graphql-core even makes their response path) and hands every other field, and any value the
fast path cannot serialize (or a null in a non-null field: an error to report), to graphql-core
unchanged; the response keeps the query's field order. None of cairn's schema extensions hooks
field resolution, so skipping it changes nothing they see.
"""

from __future__ import annotations

from typing import Any, cast

from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from graphql import (
    GraphQLField,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    specified_scalar_types,
)

_BUILT_IN = frozenset(specified_scalar_types.values())
#: Per field definition (by id: the schema lives as long as the process): the Python attribute
#: to read and the scalar that serializes it, or None for a field that takes the normal path.
_PLAIN: dict[int, tuple[str, GraphQLScalarType, bool] | None] = {}


def _plain(field: GraphQLField) -> tuple[str, GraphQLScalarType, bool] | None:
    found = _PLAIN.get(id(field), False)
    if found is not False:
        return found  # type: ignore[return-value]
    plan = None
    definition = field.extensions.get("strawberry-definition")
    field_type = field.type
    non_null = isinstance(field_type, GraphQLNonNull)
    scalar = field_type.of_type if isinstance(field_type, GraphQLNonNull) else field_type
    if (
        definition is not None
        and definition.base_resolver is None
        and not definition.permission_classes
        and not definition.extensions
        and not field.args
        and scalar in _BUILT_IN
    ):
        plan = (definition.python_name, scalar, non_null)
    _PLAIN[id(field)] = plan
    return plan


class FastLeafExecutionContext(StrawberryGraphQLCoreExecutionContext):
    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Any,
        grouped_field_set: dict[str, Any],
        position_context: Any,
    ) -> Any:
        """Plain leaves here; the rest, if any, through graphql-core; the response's fields
        in the query's order either way."""
        results: dict[str, Any] = {}
        rest: dict[str, Any] = {}
        fields = parent_type.fields
        for response_name, details in grouped_field_set.items():
            node = details[0].node
            field = fields.get(node.name.value)
            plan = None if field is None or node.arguments else _plain(field)
            if plan is not None:
                name, scalar, non_null = plan
                value = getattr(source_value, name, None)
                if value is None and not non_null:
                    results[response_name] = None
                    continue
                if value is not None:
                    try:
                        results[response_name] = scalar.serialize(value)
                        continue
                    except Exception:  # graphql-core reports it, with its path
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
