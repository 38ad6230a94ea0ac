"""What one GraphQL request may ask for, checked before anything runs (validation rules).

- depth: fields nested at most ``max_depth`` deep, introspection included: ``QUERY_TOO_DEEP``
  (introspection's own recursion, ``fields { type { fields { … } } }``, is also bounded by
  graphql-core's ``MaxIntrospectionDepthRule``, which Strawberry runs; errors.py gives its
  error the same code);
- cost: every field costs 1, times the size of the lists around it (``first`` as the request
  gives it, :data:`LIST_SIZES` otherwise): at most ``max_cost``, ``QUERY_TOO_COMPLEX``;
- aliases: at most ``max_aliases`` per document (many aliases of one expensive field is the
  classic way around a depth limit), ``TOO_MANY_ALIASES``.

A batched HTTP request holds at most ``max_operations`` operations (the router refuses more)
and a document at most ``max_tokens`` tokens (the parser refuses more).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from strawberry.extensions import SchemaExtension

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLList,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
    VariableNode,
    get_named_type,
    get_nullable_type,
    get_operation_ast,
)
from graphql.validation import ASTValidationRule


@dataclass(frozen=True)
class Limits:
    max_depth: int = 15
    max_cost: int = 25_000
    max_aliases: int = 50
    max_operations: int = 10
    max_tokens: int = 5_000


#: A paged field (one with ``first``) counts as ``first`` items: the default page when left
#: out, the largest page when it is a variable (validation does not see variables' values).
DEFAULT_PAGE = 50
#: The largest page of ``orders``, as REST's ``limit``.
MAX_PAGE = 500
#: The assumed length of any other list: ``_entities`` as many as the literal representations
#: (else 100), an order's lines and events as a big order has them, any other list as 10.
LIST_SIZES: dict[str, int] = {
    "_entities": 100,
    "nodes": 1,  # a connection's list: its page size is counted on the paged field
    "items": 20,
    "history": 20,
}
OTHER_LIST = 10


def _error(message: str, code: str, node: Any, **extensions: Any) -> GraphQLError:
    return GraphQLError(message, node, extensions={"code": code, **extensions})


class _Measure:
    """Depth and cost of one operation, following fragments (each at most once per path)."""

    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: dict[str, FragmentDefinitionNode],
        variables: dict[str, Any] | None = None,
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables or {}

    def selection(
        self,
        selection_set: SelectionSetNode | None,
        parent: GraphQLNamedType | None,
        depth: int,
        seen: frozenset[str],
    ) -> tuple[int, int]:
        """(deepest level below, cost) of ``selection_set`` under ``parent``."""
        if selection_set is None:
            return depth, 0
        deepest, cost = depth, 0
        for node in selection_set.selections:
            if isinstance(node, FieldNode):
                d, c = self.field(node, parent, depth + 1, seen)
            elif isinstance(node, InlineFragmentNode):
                on = self._type(node.type_condition.name.value) if node.type_condition else parent
                d, c = self.selection(node.selection_set, on, depth, seen)
            elif isinstance(node, FragmentSpreadNode):
                name = node.name.value
                fragment = self.fragments.get(name)
                if fragment is None or name in seen:  # unknown or cyclic: other rules report
                    continue
                on = self._type(fragment.type_condition.name.value)
                d, c = self.selection(fragment.selection_set, on, depth, seen | {name})
            else:  # pragma: no cover - no other selection kinds exist
                continue
            deepest, cost = max(deepest, d), cost + c
        return deepest, cost

    def field(
        self, node: FieldNode, parent: GraphQLNamedType | None, depth: int, seen: frozenset[str]
    ) -> tuple[int, int]:
        name = node.name.value
        definition = None
        if isinstance(parent, GraphQLObjectType):
            definition = parent.fields.get(name)
        field_type = None if definition is None else definition.type
        if name == "__schema":
            child: GraphQLNamedType | None = self.schema.get_type("__Schema")
        elif name == "__type":
            child = self.schema.get_type("__Type")
        else:
            child = None if field_type is None else get_named_type(field_type)
        introspection = name.startswith("__") or (
            parent is not None and parent.name.startswith("__")
        )
        factor = 1
        if introspection:
            pass
        elif definition is not None and "first" in definition.args:  # a page, e.g. a connection
            factor = self._page_size(node)
        elif field_type is not None and isinstance(get_nullable_type(field_type), GraphQLList):
            factor = self._list_size(node)
        deepest, below = self.selection(node.selection_set, child, depth, seen)
        return deepest, factor * (1 + below)

    def _argument(self, node: FieldNode, name: str) -> Any:
        """The argument's value as written or as its variable holds it (None: not given)."""
        for argument in node.arguments or ():
            if argument.name.value == name:
                value = argument.value
                if isinstance(value, VariableNode):
                    return self.variables.get(value.name.value)
                if isinstance(value, IntValueNode):
                    return int(value.value)
                if isinstance(value, ListValueNode):
                    return value.values
        return None

    def _page_size(self, node: FieldNode) -> int:
        first = self._argument(node, "first")
        return max(1, min(first, MAX_PAGE)) if isinstance(first, int) else DEFAULT_PAGE

    def _list_size(self, node: FieldNode) -> int:
        representations = self._argument(node, "representations")
        if isinstance(representations, (list, tuple)):
            return max(1, len(representations))
        return LIST_SIZES.get(node.name.value, OTHER_LIST)

    def _type(self, name: str) -> GraphQLNamedType | None:
        return self.schema.get_type(name)


def limit_rules(limits: Limits) -> list[type[ASTValidationRule]]:
    """The validation rules enforcing ``limits`` (to add to the schema's)."""

    class OperationLimits(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            document = context.document
            self.fragments = {
                d.name.value: d
                for d in document.definitions
                if isinstance(d, FragmentDefinitionNode)
            }
            self.aliases = 0

        def enter_field(self, node: FieldNode, *_: Any) -> None:
            if node.alias is not None:
                self.aliases += 1
                if self.aliases == limits.max_aliases + 1:
                    self.report_error(
                        _error(
                            f"the query uses more than {limits.max_aliases} aliases",
                            "TOO_MANY_ALIASES",
                            node,
                            limit=limits.max_aliases,
                        )
                    )

        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
            schema = self.context.schema
            root = schema.get_root_type(node.operation)
            measure = _Measure(schema, self.fragments)
            depth = measure.selection(node.selection_set, root, 0, frozenset())[0]
            if depth > limits.max_depth:
                self.report_error(
                    _error(
                        f"the query is {depth} levels deep; at most {limits.max_depth} are allowed",
                        "QUERY_TOO_DEEP",
                        node,
                        depth=depth,
                        limit=limits.max_depth,
                    )
                )

    return [OperationLimits]


class CostLimit(SchemaExtension):
    """The cost check, which needs the variables' values: an extension placed after
    :class:`~strawberry.extensions.ValidationCache`, so that it runs on a validated document
    and its refusal is returned like a validation error."""

    def __init__(self, limits: Limits) -> None:
        super().__init__()
        self.limits = limits

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        operation = (
            None if document is None else get_operation_ast(document, context.operation_name)
        )
        if not context.pre_execution_errors and document is not None and operation is not None:
            schema = context.schema._schema
            fragments = {
                d.name.value: d
                for d in document.definitions
                if isinstance(d, FragmentDefinitionNode)
            }
            root = schema.get_root_type(operation.operation)
            measure = _Measure(schema, fragments, context.variables)
            cost = measure.selection(operation.selection_set, root, 0, frozenset())[1]
            if cost > self.limits.max_cost:
                context.pre_execution_errors = [
                    _error(
                        f"the query costs {cost}; at most {self.limits.max_cost} is allowed",
                        "QUERY_TOO_COMPLEX",
                        operation,
                        cost=cost,
                        limit=self.limits.max_cost,
                    )
                ]
        yield
