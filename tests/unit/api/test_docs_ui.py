"""``/docs`` and ``/redoc`` load only the app's own assets (vendored under cairn/api/static):
they work offline and nothing comes from a CDN."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import httpx
import pytest

from cairn.api.app import STATIC_DIR

ASSET = re.compile(r"""(?:src|href)=["']([^"']+)["']""")
CONTENT_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".png": "image/png",
}


@pytest.mark.parametrize(
    ("page", "script"), [("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")]
)
async def test_docs_pages_reference_only_local_assets_that_answer(
    bare_client: httpx.AsyncClient, page: str, script: str
) -> None:
    r = await bare_client.get(page)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    html = r.text
    assert "://" not in html  # no absolute URL at all: no CDN, no web fonts, no validator
    urls = ASSET.findall(html)
    assert f"/static/{script}" in urls
    assert "/openapi.json" in html
    for url in urls:
        assert url.startswith("/static/"), url
        asset = await bare_client.get(url)
        assert asset.status_code == 200, url
        expected = CONTENT_TYPES[Path(url).suffix]
        assert asset.headers["content-type"].startswith(expected), url
        assert asset.content == (STATIC_DIR / Path(url).name).read_bytes()


async def test_swagger_ui_turns_the_online_validator_off(bare_client: httpx.AsyncClient) -> None:
    html = (await bare_client.get("/docs")).text
    assert '"validatorUrl": null' in html
    assert "/static/swagger-ui.css" in html


def test_vendored_assets_and_their_licences_are_there() -> None:
    names = {p.name for p in STATIC_DIR.iterdir()}
    assert {
        "swagger-ui-bundle.js",
        "swagger-ui.css",
        "favicon-32x32.png",
        "redoc.standalone.js",
        "LICENSE.swagger-ui",
        "NOTICE.swagger-ui",
        "LICENSE.redoc",
        "README.md",
    } <= names
    readme = (STATIC_DIR / "README.md").read_text(encoding="utf-8")
    assert "swagger-ui-dist | 5.35.0 | Apache-2.0" in readme
    assert "redoc | 2.5.4 | MIT" in readme
    # The README's table records each file's size and checksum: the files are as published.
    rows = re.findall(r"^\| `([^`]+)` \|.*\| (\d+) \| `([0-9a-f]{64})` \|$", readme, re.M)
    assert len(rows) == 4
    for name, size, digest in rows:
        data = (STATIC_DIR / name).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (int(size), digest), name


def test_pyproject_ships_the_static_assets() -> None:
    import tomllib

    root = STATIC_DIR.parents[3]
    config = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["cairn"]
    for path in STATIC_DIR.iterdir():
        relative = path.relative_to(root / "src" / "cairn")
        assert any(relative.match(pattern) for pattern in patterns), relative
