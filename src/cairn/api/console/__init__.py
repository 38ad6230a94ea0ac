"""The operator console (SPEC §17): ``/console/``, served by ``cairn serve``.

Server-rendered pages (Jinja2 templates in ``templates/``) with Alpine.js (vendored in
``static/``, see its README): the pages hold no data and need no token to load; their
components call the same JSON API as any client, with the bearer token the person signed in
with (kept in a session cookie only the console's pages see), so the roles are the API's.
Every asset comes from this package: the console works offline.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from cairn.api.console.pages import STATIC_DIR, STATIC_URL, router

__all__ = ["install_console"]


def install_console(app: FastAPI) -> None:
    """Mount the console's pages at ``/console/`` and its assets at ``/console/static``."""
    app.mount(STATIC_URL, StaticFiles(directory=STATIC_DIR), name="console-static")
    app.include_router(router)
