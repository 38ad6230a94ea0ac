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
class Box:
    label: str
    things: list[Thing]


@strawberry.type
class Query:
    @strawberry.field
    def thing(self) -> Thing:
        return Thing(name="mug", count=3, note=None, missing=None)  # type: ignore[arg-type]

    @strawberry.field
    def boxes(self) -> list[Box]:
        mug = Thing(name="mug", count=3, note="blue", missing="x")
        cup = Thing(name="cup", count=1, note=None, missing=None)  # type: ignore[arg-type]
        return [Box(label="a", things=[mug]), Box(label="b", things=[mug, cup])]


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


def test_nested_lists_of_plain_objects_answer_as_graphql_core_would() -> None:
    query = "{ boxes { label things { name n: count note } } }"
    fast = SCHEMA.execute_sync(query)
    plain = strawberry.Schema(Query).execute_sync(query)
    assert fast.errors is None
    assert fast.data == plain.data
    assert fast.data == {
        "boxes": [
            {"label": "a", "things": [{"name": "mug", "n": 3, "note": "blue"}]},
            {
                "label": "b",
                "things": [
                    {"name": "mug", "n": 3, "note": "blue"},
                    {"name": "cup", "n": 1, "note": None},
                ],
            },
        ]
    }


def test_fragments_and_resolvers_inside_a_list_still_resolve() -> None:
    query = "{ boxes { things { ... on Thing { name } shout } } }"
    result = SCHEMA.execute_sync(query)
    assert result.errors is None
    assert result.data is not None
    assert result.data["boxes"][1]["things"][1] == {"name": "cup", "shout": "CUP"}


def test_a_null_deep_in_a_list_is_reported_with_its_full_path() -> None:
    result = SCHEMA.execute_sync("{ boxes { things { missing } } }")
    assert result.errors is not None
    assert [e.path for e in result.errors] == [["boxes", 1, "things", 1, "missing"]]
