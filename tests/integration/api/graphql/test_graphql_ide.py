"""GraphiQL at ``GET /graphql`` loads only the app's own assets (vendored under
cairn/api/static/graphiql): it works offline and nothing comes from a CDN."""

from __future__ import annotations

import hashlib
import re

from graphql_client import GraphQLServer

from cairn.api.app import STATIC_DIR

ASSET = re.compile(r"""(?:src|href)=["']([^"']+)["']""")
GRAPHIQL_DIR = STATIC_DIR / "graphiql"


async def test_graphiql_references_only_local_assets_that_answer(gql: GraphQLServer) -> None:
    page = await gql.http.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "://" not in page.text  # no absolute URL at all: no CDN, no web fonts
    urls = ASSET.findall(page.text)
    assert "/static/graphiql/graphiql.min.js" in urls
    for url in urls:
        assert url.startswith("/static/graphiql/"), url
        asset = await gql.http.get(url)
        assert asset.status_code == 200, url
        assert asset.content == (GRAPHIQL_DIR / url.rsplit("/", 1)[1]).read_bytes()


def test_the_vendored_files_are_as_published_with_their_licences() -> None:
    readme = (GRAPHIQL_DIR / "README.md").read_text(encoding="utf-8")
    rows = re.findall(
        r"^\| `([^`]+)` \|.*\| \w+ \(`([^`]+)`\) \| (\d+) \| `([0-9a-f]{64})` \|$", readme, re.M
    )
    assert len(rows) == 4
    for name, licence, size, digest in rows:
        data = (GRAPHIQL_DIR / name).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (int(size), digest), name
        assert "MIT License" in (GRAPHIQL_DIR / licence).read_text(encoding="utf-8")
