"""The fast path for plain leaf fields answers exactly what graphql-core would."""

from __future__ import annotations

import strawberry

from cairn.api.graphql.execution import FastLeafExecutionContext


@strawberry.type
class Thing:
    name: str
    count: int
    note: str | None
    missing: str  # left None on purpose: a null in a non-null field

    @strawberry.field
    def shout(self) -> str:
        return self.name.upper()


@strawberry.type
class Query:
    @strawberry.field
    def thing(self) -> Thing:
        return Thing(name="mug", count=3, note=None, missing=None)  # type: ignore[arg-type]


SCHEMA = strawberry.Schema(Query, execution_context_class=FastLeafExecutionContext)


def test_fields_keep_the_querys_order_whichever_path_they_take() -> None:
    result = SCHEMA.execute_sync("{ thing { count shout name alias: name note } }")
    assert result.errors is None
    assert result.data is not None
    thing = result.data["thing"]
    assert list(thing) == ["count", "shout", "name", "alias", "note"]
    assert thing == {"count": 3, "shout": "MUG", "name": "mug", "alias": "mug", "note": None}


def test_a_null_in_a_non_null_field_is_reported_with_its_path() -> None:
    result = SCHEMA.execute_sync("{ thing { name missing } }")
    assert result.errors is not None
    [error] = result.errors
    assert error.path == ["thing", "missing"]
    assert result.data is None
