"""The console's pages and assets, without a browser: every page is served with the navigation
bar SPEC §17 names, and nothing in them points off the server."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from cairn.api.console import install_console
from cairn.api.console.pages import NAVIGATION, STATIC_DIR

CONSOLE = Path(STATIC_DIR).parent
PAGES = [path for _, _, path in NAVIGATION] + ["/console/sign-in", "/console/orders/o-1"]
OFF_SITE = re.compile(r"""(https?:)?//[a-z0-9]""", re.IGNORECASE)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    install_console(app)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://console") as c:
        yield c


@pytest.mark.parametrize("path", PAGES)
async def test_each_page_is_served_with_the_navigation_bar(
    client: httpx.AsyncClient, path: str
) -> None:
    r = await client.get(path)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    if path != "/console/sign-in":
        for label in ("Overview", "Orders", "Streams", "Projections", "Sagas"):
            assert f">{label}</a>" in r.text


async def test_the_sign_in_page_has_a_token_field_and_a_sign_in_button(
    client: httpx.AsyncClient,
) -> None:
    page = (await client.get("/console/sign-in")).text
    assert '<label for="token">Token</label>' in page
    assert '<button type="submit" :disabled="busy">Sign in</button>' in page


async def test_an_order_id_is_escaped_into_its_page(client: httpx.AsyncClient) -> None:
    page = (await client.get('/console/orders/"><script>x')).text
    assert "<script>x" not in page


@pytest.mark.parametrize(
    "path",
    sorted(p for p in CONSOLE.rglob("*") if p.suffix in {".html", ".js", ".css"}),
    ids=lambda p: p.name,
)
def test_no_page_or_asset_loads_anything_from_elsewhere(path: Path) -> None:
    text = path.read_text()
    if path.name == "alpine.min.js":  # vendored: its only URL is in an error message
        assert set(re.findall(r"https?://[^`\"' ]+", text)) == {"https://alpinejs.dev/plugins/${r}"}
        return
    assert OFF_SITE.findall(text.replace("http://www.w3.org/2000/svg", "")) == []


async def test_the_assets_are_served_from_the_package(client: httpx.AsyncClient) -> None:
    for name in ("alpine.min.js", "console.js", "console.css", "favicon.svg"):
        assert (await client.get(f"/console/static/{name}")).status_code == 200


async def test_the_pages_forbid_the_browser_to_load_from_elsewhere(
    client: httpx.AsyncClient,
) -> None:
    policy = (await client.get("/console/")).headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "connect-src 'self'" in policy
    assert "script-src 'self' 'unsafe-eval'" in policy
