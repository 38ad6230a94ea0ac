"""The console's pages: one route per page, each a template that Alpine.js fills from the API.

The pages are the same for everyone (no data, no token): signing in and the roles are the
API's business, so a page shows what its calls return, or the API's refusal.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.templating import Jinja2Templates

STATIC_DIR = Path(__file__).parent / "static"
STATIC_URL = "/console/static"

#: The navigation bar: (page, label, path). SPEC §17 names the first five.
NAVIGATION = (
    ("overview", "Overview", "/console/"),
    ("orders", "Orders", "/console/orders"),
    ("streams", "Streams", "/console/streams"),
    ("projections", "Projections", "/console/projections"),
    ("sagas", "Sagas", "/console/sagas"),
    ("customers", "Customers", "/console/customers"),
    ("time-travel", "Time travel", "/console/time-travel"),
)

router = APIRouter(prefix="/console", include_in_schema=False)

#: The browser itself refuses anything from elsewhere: scripts, styles, images and API calls
#: come from this server only. Alpine.js evaluates its ``x-`` expressions with ``new Function``
#: (its standard build), hence ``'unsafe-eval'``; no inline script or style is needed.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self' 'unsafe-eval'; style-src 'self'; "
        "img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; "
        "frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}

_templates = Jinja2Templates(
    env=Environment(
        loader=PackageLoader("cairn.api.console", "templates"),
        autoescape=select_autoescape(default=True),
    )
)
OrderId = Annotated[str, PathParam(min_length=1, max_length=200)]


def _page(request: Request, template: str, page: str, **context: Any) -> HTMLResponse:
    return _templates.TemplateResponse(
        request,
        template,
        {"page": page, "navigation": NAVIGATION, "static": STATIC_URL, **context},
        headers=SECURITY_HEADERS,
    )


@router.get("", response_class=RedirectResponse)
async def console_root() -> RedirectResponse:
    return RedirectResponse("/console/", status_code=308)


@router.get("/", response_class=HTMLResponse)
async def overview(request: Request) -> HTMLResponse:
    return _page(request, "overview.html", "overview", title="Overview")


@router.get("/sign-in", response_class=HTMLResponse)
async def sign_in(request: Request) -> HTMLResponse:
    return _page(request, "sign_in.html", "sign-in", title="Sign in")


@router.get("/orders", response_class=HTMLResponse)
async def orders(request: Request) -> HTMLResponse:
    return _page(request, "orders.html", "orders", title="Orders")


@router.get("/orders/{order_id}", response_class=HTMLResponse)
async def order(request: Request, order_id: OrderId) -> HTMLResponse:
    return _page(request, "order.html", "orders", title="Order", order_id=order_id)


@router.get("/streams", response_class=HTMLResponse)
async def streams(request: Request) -> HTMLResponse:
    return _page(request, "streams.html", "streams", title="Streams")


@router.get("/projections", response_class=HTMLResponse)
async def projections(request: Request) -> HTMLResponse:
    return _page(request, "projections.html", "projections", title="Projections")


@router.get("/sagas", response_class=HTMLResponse)
async def sagas(request: Request) -> HTMLResponse:
    return _page(request, "sagas.html", "sagas", title="Sagas")


@router.get("/customers", response_class=HTMLResponse)
async def customers(request: Request) -> HTMLResponse:
    return _page(request, "customers.html", "customers", title="Customers")


@router.get("/time-travel", response_class=HTMLResponse)
async def time_travel(request: Request) -> HTMLResponse:
    return _page(request, "time_travel.html", "time-travel", title="Time travel")
