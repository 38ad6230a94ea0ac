"""The operator console (SPEC §17) in a real browser: Debian's Chromium driven by Playwright,
against the real ``cairn serve``.

Every test signs in with a token and fails if the page sent a request off the server's origin
or hit a JavaScript error (an exception, or an error on the console). Chromium must be
installed (``apt-get install chromium``; ``make test`` and ``.ci/run`` do it): without it these
tests fail, they are never skipped. Screenshots go to ``CAIRN_CONSOLE_SCREENSHOTS`` (the README's
are made with ``CAIRN_CONSOLE_SCREENSHOTS=docs/images``), else to a temporary directory.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_server import ADMIN, MUG, Server, order_body, wait_for
from playwright.sync_api import Browser, Page, expect, sync_playwright

# Chromium's own chatter (updates, sync, safe browsing, …) would be requests off the origin.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
NAVIGATION = ["Overview", "Orders", "Streams", "Projections", "Sagas", "Customers", "Time travel"]


@pytest.fixture(scope="module")
def console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("console")
    srv = Server(f"sqlite:///{workdir}/cairn.db", workdir)
    try:
        yield srv
    finally:
        assert srv.stop() == 0, srv.log()


@pytest.fixture(scope="module")
def api(console_server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=console_server.url, timeout=30.0, headers=ADMIN) as client:
        client.post("/api/v1/products", json=MUG | {"initial_stock": 100_000})
        yield client


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is not installed (apt-get install -y chromium)"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wanted = os.environ.get("CAIRN_CONSOLE_SCREENSHOTS")
    folder = Path(wanted) if wanted else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def page(browser: Browser, console_server: Server) -> Iterator[Page]:
    """A signed-in page that records requests off the origin and JavaScript errors; the test
    fails on any."""
    context = browser.new_context(viewport={"width": 1100, "height": 720})
    opened = context.new_page()
    origin = console_server.url
    offsite: list[str] = []
    errors: list[str] = []
    opened.on(
        "request",
        lambda r: None if r.url.startswith(origin + "/") else offsite.append(r.url),
    )
    opened.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
    opened.on(
        "console", lambda m: errors.append(f"console: {m.text}") if m.type == "error" else None
    )
    opened.goto(f"{origin}/console/")
    opened.get_by_label("Token").fill("adm")
    opened.get_by_role("button", name="Sign in").click()
    expect(opened.get_by_role("heading", name="Overview", exact=True)).to_be_visible()
    try:
        yield opened
    finally:
        context.close()
    assert offsite == []
    assert errors == []


def _go(page: Page, link: str) -> None:
    page.get_by_role("navigation").get_by_role("link", name=link, exact=True).click()
    expect(page.get_by_role("heading", name=link, exact=True)).to_be_visible()


def _placed_order(api: httpx.Client) -> dict[str, Any]:
    created: dict[str, Any] = api.post("/api/v1/orders", json=order_body()).json()
    placed = api.post(
        f"/api/v1/orders/{created['order_id']}/place", json={"payment_method": "tok_ok"}
    )
    assert placed.status_code == 202, placed.text
    position = placed.json()["position"]
    # Read-your-writes: the order view has the order before a page lists it.
    seen = api.get(f"/api/v1/orders/{created['order_id']}", params={"min_position": position})
    assert seen.status_code == 200, seen.text
    return created | {"placed_position": position}


def _saga_of(api: httpx.Client, order_id: str) -> None:
    """Wait until the order's fulfilment saga is listed."""
    wait_for(
        api,
        "/api/v1/admin/sagas",
        lambda body: any(s.get("order_id") == order_id for s in body["sagas"]),
    )


def test_a_page_asks_for_a_token_before_anything_else(
    browser: Browser, console_server: Server
) -> None:
    context = browser.new_context()
    fresh = context.new_page()
    fresh.goto(f"{console_server.url}/console/projections")
    expect(fresh.get_by_label("Token")).to_be_visible()
    expect(fresh.get_by_role("button", name="Sign in")).to_be_visible()
    assert "/console/sign-in" in fresh.url
    context.close()


def test_every_page_is_reachable_from_the_navigation_bar(
    page: Page, api: httpx.Client, shots: Path
) -> None:
    for _ in range(6):  # some traffic for the charts, a sample a second
        _placed_order(api)
        page.wait_for_timeout(700)
    page.screenshot(path=shots / "console-overview.png")
    for link in NAVIGATION[1:]:
        _go(page, link)
        page.wait_for_timeout(500)
        page.screenshot(path=shots / f"console-{link.lower().replace(' ', '-')}.png")
    _go(page, "Overview")
    expect(page.get_by_role("cell", name="event_store")).to_be_visible()


def test_the_orders_list_links_each_number_to_its_order(page: Page, api: httpx.Client) -> None:
    order = _placed_order(api)
    _go(page, "Orders")
    link = page.get_by_role("link", name=order["order_number"])
    expect(link).to_be_visible()
    row = page.get_by_role("row").filter(has=link)
    expect(row).to_contain_text(re.compile(r"placed|confirmed|shipped"))
    expect(row).to_contain_text("25.00 EUR")
    link.click()
    expect(page.get_by_role("heading", name=order["order_number"])).to_be_visible()


def test_the_version_slider_shows_the_order_as_draft_at_version_1(
    page: Page, api: httpx.Client, console_server: Server, shots: Path
) -> None:
    order = _placed_order(api)
    page.goto(f"{console_server.url}/console/orders/{order['order_id']}")
    slider = page.get_by_label("Version")
    expect(slider).to_have_attribute("min", "1")
    expect(page.locator(".status")).not_to_have_text("draft")

    slider.fill("1")

    expect(page.locator(".status")).to_have_text("draft")
    expect(page.locator(".timeline")).to_contain_text("OrderCreated")
    page.screenshot(path=shots / "console-order.png")


def test_order_created_appears_live_in_the_streams_tail(
    page: Page, api: httpx.Client, shots: Path
) -> None:
    _go(page, "Streams")
    expect(page.locator(".badge", has_text="live")).to_be_visible()

    created = api.post("/api/v1/orders", json=order_body()).json()

    entry = page.locator(".tail li").filter(has_text=f"order-{created['order_id']}")
    expect(entry.filter(has_text="OrderCreated")).to_be_visible()
    entry.filter(has_text="OrderCreated").get_by_role("button").click()
    expect(page.locator("details.event pre").first).to_contain_text(created["order_id"])
    page.screenshot(path=shots / "console-streams.png")


def test_rebuild_shows_a_progress_bar(page: Page, api: httpx.Client, shots: Path) -> None:
    _placed_order(api)
    _go(page, "Projections")
    row = page.get_by_role("row").filter(has=page.get_by_role("cell", name="orders", exact=True))

    row.get_by_role("button", name="Rebuild").click()

    bar = row.get_by_role("progressbar")
    expect(bar).to_be_visible()
    expect(row).to_contain_text("completed 100%")
    expect(bar).to_have_attribute("value", "100")
    page.screenshot(path=shots / "console-projections.png")


def test_the_sagas_list_shows_each_saga_and_its_step_log(page: Page, api: httpx.Client) -> None:
    order = _placed_order(api)
    _saga_of(api, order["order_id"])
    _go(page, "Sagas")
    row = page.get_by_role("row").filter(has_text=order["order_id"])
    expect(row).to_be_visible()
    expect(row).to_contain_text(re.compile(r"running|completed"))

    row.get_by_role("button").click()

    expect(page.get_by_role("heading", name="Step log")).to_be_visible()
    expect(page.locator(".timeline li").first).to_contain_text("received")


def test_the_sagas_list_filters_by_status(page: Page, api: httpx.Client) -> None:
    _placed_order(api)
    _go(page, "Sagas")
    page.get_by_label("Status").select_option("failed")
    expect(page.get_by_text("No sagas.")).to_be_visible()


def test_forgetting_a_customer_asks_for_confirmation_first(page: Page, api: httpx.Client) -> None:
    api.post("/api/v1/orders", json=order_body(customer_id="c-forget"))
    _go(page, "Customers")
    page.get_by_label("Customer", exact=True).fill("c-forget")
    page.get_by_role("button", name="Forget customer").click()
    dialog = page.get_by_role("alertdialog")
    expect(dialog).to_contain_text("c-forget")

    dialog.get_by_role("button", name="Confirm").click()

    expect(page.get_by_role("status")).to_contain_text("Customer c-forget forgotten (1 order)")


def test_time_travel_shows_an_order_as_draft_before_it_was_placed(
    page: Page, api: httpx.Client, shots: Path
) -> None:
    order = _placed_order(api)
    _go(page, "Time travel")
    page.get_by_label("Projection").select_option("orders")
    page.get_by_label("Position").fill(str(order["placed_position"] - 1))

    page.get_by_role("button", name="Show").click()

    row = page.get_by_role("row").filter(has_text=order["order_id"])
    expect(row).to_contain_text("draft")
    page.screenshot(path=shots / "console-time-travel.png")


def test_an_event_of_the_timeline_opens_the_order_view_as_it_was_then(
    page: Page, api: httpx.Client, console_server: Server
) -> None:
    order = _placed_order(api)
    page.goto(f"{console_server.url}/console/orders/{order['order_id']}")
    first = page.locator(".timeline li").filter(has_text="OrderCreated")

    first.get_by_role("link", name="order view then").click()

    expect(page.get_by_role("heading", name="Time travel", exact=True)).to_be_visible()
    row = page.get_by_role("row").filter(has_text=order["order_id"])
    expect(row).to_contain_text("draft")


def test_another_tab_is_signed_in_too_until_signing_out(page: Page, console_server: Server) -> None:
    other = page.context.new_page()
    other.goto(f"{console_server.url}/console/sagas")
    expect(other.get_by_role("heading", name="Sagas", exact=True)).to_be_visible()

    other.get_by_role("button", name="Sign out").click()

    expect(other.get_by_label("Token")).to_be_visible()
    other.close()
    # The first tab's overview refreshes every second: it finds the token gone and goes to the
    # sign-in page by itself, without sending a request the server would refuse (the fixture
    # fails the test on a 401 in the browser's console).
    expect(page.get_by_label("Token")).to_be_visible()
    page.goto(f"{console_server.url}/console/projections")
    expect(page.get_by_label("Token")).to_be_visible()
