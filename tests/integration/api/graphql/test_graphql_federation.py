"""cairn is an Apollo Federation 2 subgraph: ``_service { sdl }``, ``_entities``, ``Order`` keyed
by ``id`` and ``Product`` by ``sku`` (SPEC §14). The SDL is checked against the federation rules
here and composed into a supergraph by Apollo's own composer (installed by the test)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from graphql_client import ADMIN, CUSTOMER_1, CUSTOMER_2, GraphQLServer

from graphql import (
    DirectiveNode,
    ObjectTypeDefinitionNode,
    SchemaExtensionNode,
    StringValueNode,
    parse,
    print_ast,
)

#: The composer, pinned; installed once into a cache outside the repository.
COMPOSITION = "@apollo/composition@2.14.4"
CACHE = Path(os.environ.get("CAIRN_TEST_CACHE", Path.home() / ".cache" / "cairn-tests"))
COMPOSE_SCRIPT = Path(__file__).with_name("compose_supergraph.cjs")

ENTITIES = """
query Entities($reps: [_Any!]!) {
  _entities(representations: $reps) {
    __typename
    ... on Order { id status customerId }
    ... on Product { sku name price }
  }
}"""

#: Another team's subgraph that adds a field to cairn's orders.
REVIEWS_SDL = """
extend schema @link(url: "https://specs.apollo.dev/federation/v2.7", import: ["@key"])
type Order @key(fields: "id") { id: ID!  reviewScore: Int }
type Query { topReviewed: [Order!]! }
"""


async def _sdl(gql: GraphQLServer) -> str:
    sdl: str = (await gql.data("{ _service { sdl } }", token=None))["_service"]["sdl"]
    return sdl


def _directives(node: ObjectTypeDefinitionNode | SchemaExtensionNode) -> list[DirectiveNode]:
    return list(node.directives or ())


def _argument(directive: DirectiveNode, name: str) -> str:
    for argument in directive.arguments:
        if argument.name.value == name and isinstance(argument.value, StringValueNode):
            return argument.value.value
    raise AssertionError(f"@{directive.name.value} has no {name}")


async def test_the_sdl_links_federation_2(gql: GraphQLServer) -> None:
    document = parse(await _sdl(gql))
    links = [
        d
        for node in document.definitions
        if isinstance(node, SchemaExtensionNode)
        for d in _directives(node)
        if d.name.value == "link"
    ]
    assert len(links) == 1
    assert _argument(links[0], "url").startswith("https://specs.apollo.dev/federation/v2.")


async def test_order_and_product_are_entities_keyed_by_fields_they_have(gql: GraphQLServer) -> None:
    document = parse(await _sdl(gql))
    types = {
        n.name.value: n for n in document.definitions if isinstance(n, ObjectTypeDefinitionNode)
    }
    for name, key in (("Order", "id"), ("Product", "sku")):
        keys = [d for d in _directives(types[name]) if d.name.value == "key"]
        assert [_argument(d, "fields") for d in keys] == [key]
        field = next(f for f in types[name].fields or () if f.name.value == key)
        assert print_ast(field.type) == "ID!"


ORDER_AT = "query O($id: ID!, $min: Int) { order(id: $id, minPosition: $min) { id } }"


async def test_entities_resolve_orders_and_products_for_the_caller(gql: GraphQLServer) -> None:
    await gql.register_product()
    created = await gql.create_order(CUSTOMER_1)
    order_id = created["orderId"]
    # Read models are eventually consistent: read your write first (minPosition), as a client
    # that needs it would; ``_entities`` then finds the order in the read model.
    await gql.data(ORDER_AT, {"id": order_id, "min": created["position"]}, ADMIN)
    reps = [
        {"__typename": "Order", "id": order_id},
        {"__typename": "Product", "sku": "MUG-1"},
        {"__typename": "Order", "id": "no-such-order"},
    ]
    data = await gql.data(ENTITIES, {"reps": reps}, ADMIN)
    order, product, absent = data["_entities"]
    assert order == {"__typename": "Order", "id": order_id, "status": "draft", "customerId": "c-1"}
    assert product == {"__typename": "Product", "sku": "MUG-1", "name": "Mug", "price": "12.50"}
    assert absent is None


async def test_an_entity_of_another_customer_is_null(gql: GraphQLServer) -> None:
    await gql.register_product()
    order_id = (await gql.create_order(CUSTOMER_1))["orderId"]
    reps = [{"__typename": "Order", "id": order_id}]
    assert (await gql.data(ENTITIES, {"reps": reps}, CUSTOMER_2))["_entities"] == [None]


def _composer() -> Path:
    """A directory whose node_modules holds the pinned composer (npm installs it once)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail("node and npm are needed to compose the supergraph (Node 20 or later)")
    target = CACHE / COMPOSITION.replace("/", "+")
    if not (target / "node_modules" / "@apollo" / "composition").is_dir():
        target.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--prefix", str(target), COMPOSITION],
            check=True,
            capture_output=True,
            timeout=300,
        )
    return target


@pytest.mark.timeout(400)
async def test_apollo_composes_a_supergraph_with_cairn_and_another_subgraph(
    gql: GraphQLServer, tmp_path: Path
) -> None:
    composer = await asyncio.to_thread(_composer)
    (tmp_path / "cairn.graphql").write_text(await _sdl(gql))
    (tmp_path / "reviews.graphql").write_text(REVIEWS_SDL)
    result = await asyncio.to_thread(
        subprocess.run,
        [
            "node",
            str(COMPOSE_SCRIPT),
            f"cairn={tmp_path / 'cairn.graphql'}",
            f"reviews={tmp_path / 'reviews.graphql'}",
        ],
        env={**os.environ, "COMPOSITION_DIR": str(composer)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    supergraph = parse(result.stdout)
    order = next(
        n
        for n in supergraph.definitions
        if isinstance(n, ObjectTypeDefinitionNode) and n.name.value == "Order"
    )
    fields = {f.name.value for f in order.fields or ()}
    assert {"id", "status", "items", "reviewScore"} <= fields
