"""``_service { sdl }``: the subgraph's SDL as Apollo Federation 2 writes it.

Strawberry prints the ``@link`` on a ``schema { query: … }`` definition; cairn's root types
have the default names, so the SDL states the link the way Federation 2's own documents do,
``extend schema @link(url: "https://specs.apollo.dev/federation/v2.7", import: [...])``, and
leaves the root operation types implicit. Both forms compose (tested with Apollo's composer).
"""

from __future__ import annotations

import re

import strawberry
from strawberry.printer import print_schema

_SCHEMA_DEFINITION = re.compile(r"\Aschema (@link\(.*?\)) \{\n.*?\n\}\n", re.S)


def subgraph_sdl(schema: strawberry.Schema) -> str:
    return _SCHEMA_DEFINITION.sub(r"extend schema \1\n", print_schema(schema), count=1)


@strawberry.type(name="_Service")
class Service:
    sdl: str


@strawberry.type
class FederationFields:
    @strawberry.field(name="_service")
    def service(self, info: strawberry.Info) -> Service:
        return Service(sdl=subgraph_sdl(info.schema))
