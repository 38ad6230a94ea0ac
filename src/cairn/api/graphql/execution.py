"""A faster path for plain leaf fields: most of a page of orders is strings and numbers.

graphql-core resolves every field the same way: it builds a resolve-info object, coerces the
(absent) arguments, calls Strawberry's resolver wrapper, which calls the default resolver, and
completes the value. For a field that Strawberry declares without a resolver, arguments,
permissions or field extensions, and whose type is a built-in scalar, all of that reduces to
``serialize(getattr(source, name))``; a list of 50 orders has over a thousand such fields, and
that overhead is most of the request. This context does exactly that for such fields and hands
every other field, and any value the fast path cannot serialize (or a null in a non-null
field: an error to report), to graphql-core unchanged. None of cairn's schema extensions hooks
field resolution, so skipping it changes nothing they see.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    GraphQLField,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    specified_scalar_types,
)
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

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
    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: Any,
        path: Any,
        position_context: Any,
    ) -> Any:
        node = field_details_list[0].node
        field = parent_type.fields.get(node.name.value)
        plan = None if field is None or node.arguments else _plain(field)
        if plan is not None:
            name, scalar, non_null = plan
            value = getattr(source, name, None)
            if value is not None:
                try:
                    return scalar.serialize(value)
                except Exception:  # let graphql-core report it, with its path
                    pass
            elif not non_null:
                return None
        return super().execute_field(
            parent_type, source, field_details_list, path, position_context
        )
