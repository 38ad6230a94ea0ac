"""Depth, cost, alias, token and batch limits: refused with a code before anything runs, never a
500 (SPEC §14); GraphQL's own errors have codes of their own."""

from __future__ import annotations

import hashlib

from graphql_client import ADMIN, GraphQLServer

from graphql import get_introspection_query

DEEP_INTROSPECTION = (
    "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }"
)


def _codes(body: dict[str, object]) -> list[str]:
    errors = body["errors"]
    assert isinstance(errors, list)
    return [e["extensions"]["code"] for e in errors]


async def test_nested_introspection_is_refused_as_too_deep(gql: GraphQLServer) -> None:
    body = await gql.run(DEEP_INTROSPECTION, token=None)
    assert _codes(body) == ["QUERY_TOO_DEEP"]
    assert body.get("data") is None


async def test_a_deep_type_reference_chain_is_refused(gql: GraphQLServer) -> None:
    chain = "name " + "ofType { " * 20 + "name" + " }" * 20
    body = await gql.run(f'{{ __type(name: "Order") {{ {chain} }} }}', token=None)
    assert "QUERY_TOO_DEEP" in _codes(body)


async def test_the_standard_introspection_query_of_tools_is_answered(gql: GraphQLServer) -> None:
    data = await gql.data(get_introspection_query(descriptions=True), token=None)
    names = {t["name"] for t in data["__schema"]["types"]}
    assert {"Order", "Product", "OrderStatusChange"} <= names


async def test_a_query_costing_too_much_is_refused(gql: GraphQLServer) -> None:
    query = """{ orders(first: 500) { nodes { id
        history { type data } items { sku product { name price available } } } } }"""
    assert _codes(await gql.run(query)) == ["QUERY_TOO_COMPLEX"]


async def test_many_aliases_are_refused(gql: GraphQLServer) -> None:
    fields = " ".join(f"a{i}: __typename" for i in range(60))
    assert _codes(await gql.run(f"{{ {fields} }}")) == ["TOO_MANY_ALIASES"]


async def test_an_oversized_document_is_refused_by_the_parser(gql: GraphQLServer) -> None:
    fields = " ".join("__typename" for _ in range(6000))
    assert _codes(await gql.run(f"{{ {fields} }}")) == ["GRAPHQL_PARSE_FAILED"]


async def test_a_batch_runs_each_operation(gql: GraphQLServer) -> None:
    response = await gql.post([{"query": "{ __typename }"}, {"query": "{ _service { sdl } }"}])
    assert response.status_code == 200
    first, second = response.json()
    assert first == {"data": {"__typename": "Query"}}
    assert "Order" in second["data"]["_service"]["sdl"]


async def test_a_batch_of_too_many_operations_is_refused(gql: GraphQLServer) -> None:
    response = await gql.post([{"query": "{ __typename }"}] * 11)
    assert response.status_code == 400
    assert _codes(response.json()) == ["TOO_MANY_OPERATIONS"]


async def test_a_syntax_error_is_a_parse_failure(gql: GraphQLServer) -> None:
    assert _codes(await gql.run("{ orders { ")) == ["GRAPHQL_PARSE_FAILED"]


async def test_an_unknown_field_is_a_validation_failure(gql: GraphQLServer) -> None:
    assert _codes(await gql.run("{ orders { bogus } }")) == ["GRAPHQL_VALIDATION_FAILED"]


async def test_a_body_that_is_not_json_gets_rests_code(gql: GraphQLServer) -> None:
    response = await gql.http.post(
        "/graphql",
        content=b"{not json",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {ADMIN}"},
    )
    assert response.status_code == 400
    assert _codes(response.json()) == ["app.malformed_json"]


async def test_first_is_capped_like_rests_limit(gql: GraphQLServer) -> None:
    body = await gql.run("{ orders(first: 501) { hasNextPage } }")
    assert _codes(body) == ["app.validation"]


async def test_a_persisted_query_is_asked_for_once_then_run_by_its_hash(gql: GraphQLServer) -> None:
    query = "{ __typename }"
    digest = hashlib.sha256(query.encode()).hexdigest()
    by_hash = {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": digest}}}
    unknown = await gql.post(by_hash)
    assert _codes(unknown.json()) == ["PERSISTED_QUERY_NOT_FOUND"]
    registered = await gql.post(by_hash | {"query": query})
    assert registered.json() == {"data": {"__typename": "Query"}}
    again = await gql.post(by_hash)
    assert again.json() == {"data": {"__typename": "Query"}}


async def test_a_persisted_query_under_another_hash_is_refused(gql: GraphQLServer) -> None:
    wrong = {"persistedQuery": {"version": 1, "sha256Hash": "0" * 64}}
    response = await gql.post({"query": "{ __typename }", "extensions": wrong})
    assert response.status_code == 400
    assert _codes(response.json()) == ["PERSISTED_QUERY_HASH_MISMATCH"]
