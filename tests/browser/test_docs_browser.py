"""/docs and /redoc work in a real browser without internet: they render the API, ask nothing of
any other host, and Swagger UI's "Authorize" and "Try it out" reach the API with a token."""

from __future__ import annotations

import itertools
import re
from typing import Any

import httpx
from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import LiveServer, Screenshot
from tests.conftest import PASSWORD

_emails = itertools.count(1)
# ReDoc 2.x draws its sidebar footer's logo from its CDN, whatever the options: the one request
# to another host the pages make (app/docs.py serves the bundle as fastapi-offline ships it).


def _on_server(server: LiveServer, url: str) -> bool:
    # The trailing "/" keeps http://127.0.0.1:4000 from vouching for http://127.0.0.1:40001. A
    # blob: URL of the page's own origin (ReDoc starts its search worker from one) is memory, not
    # network; so is data:.
    return url.startswith((f"{server.url}/", f"blob:{server.url}/", "data:"))


def _record_requests(page: Page, server: LiveServer) -> list[str]:
    """Every URL the page asks for from now on: documents, scripts, styles, fonts, XHR, images."""
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    # Recorded, then refused: the test never waits on the internet, nor depends on reaching it.
    page.route(lambda url: not _on_server(server, url), lambda route: route.abort())
    return urls


def _assert_only_asked(server: LiveServer, urls: list[str]) -> None:
    assert urls, "the page made no request at all"
    elsewhere = [url for url in urls if not _on_server(server, url)]
    assert not elsewhere, f"the page asked other hosts: {elsewhere}"


def _register(server: LiveServer) -> str:
    # The server lives for the session: each call gets an address no earlier test used.
    email = f"docs-reader-{next(_emails)}@example.com"
    response = httpx.post(
        f"{server.url}/users", json={"email": email, "name": "Docs Reader", "password": PASSWORD}, timeout=15
    )
    assert response.status_code == 201, response.text
    return email


def _operation(page: Page, method: str, path: str) -> Locator:
    return page.locator(f".opblock.opblock-{method}").filter(has=page.locator(f'[data-path="{path}"]'))


def test_swagger_ui_authorizes_and_calls_an_operation(
    page: Page, live_server: LiveServer, screenshot: Screenshot
) -> None:
    email = _register(live_server)
    requests = _record_requests(page, live_server)

    page.goto(f"{live_server.url}/docs")
    me = _operation(page, "get", "/users/me")
    expect(me).to_be_visible()
    assert page.locator(".opblock").count() > 10

    # The schema declares OAuth2's password flow: the dialog asks for the credentials themselves.
    page.locator(".scheme-container").get_by_role("button", name="Authorize").click()
    dialog = page.locator(".dialog-ux")
    dialog.get_by_label("username:", exact=True).fill(email)
    dialog.get_by_label("password:", exact=True).fill(PASSWORD)
    dialog.get_by_role("button", name="Apply given OAuth2 credentials").click()
    # Swagger UI swaps the form for an "Authorized" summary once /auth/token answered with a token.
    expect(dialog.get_by_role("heading", name="Authorized", exact=True)).to_be_visible()
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_be_hidden()

    me.locator(".opblock-summary").click()
    me.get_by_role("button", name="Try it out").click()
    me.get_by_role("button", name="Execute").click()
    response = me.locator(".live-responses-table .response")
    expect(response.locator(".response-col_status")).to_have_text("200")
    expect(response.locator(".response-col_description")).to_contain_text(f'"email": "{email}"')

    path = screenshot(page, "docs-users-me")
    assert path.is_file()
    assert path.stat().st_size > 0
    assert f"{live_server.url}/auth/token" in requests
    assert f"{live_server.url}/users/me" in requests
    _assert_only_asked(live_server, requests)


def _open_redoc(page: Page, server: LiveServer) -> list[str]:
    schema: dict[str, Any] = httpx.get(f"{server.url}/openapi.json", timeout=15).json()
    summary: str = schema["paths"]["/users/me"]["get"]["summary"]
    requests = _record_requests(page, server)
    page.goto(f"{server.url}/redoc")
    expect(page.get_by_role("heading", level=1)).to_contain_text(schema["info"]["title"])
    # An operation's heading is named by its anchor link and then its summary.
    heading = page.get_by_role("heading", level=2, name=re.compile(rf"(^|\s){re.escape(summary)}$"))
    expect(heading).to_be_visible()
    # Images (ReDoc's logo among them) are asked for after the first render: let the network
    # settle, so that every request the page makes is recorded before the caller looks.
    page.wait_for_load_state("networkidle")
    return requests


def test_redoc_renders_the_api_from_this_host_only(page: Page, live_server: LiveServer, screenshot: Screenshot) -> None:
    requests = _open_redoc(page, live_server)

    path = screenshot(page, "redoc")
    assert path.is_file()
    assert path.stat().st_size > 0
    # ReDoc's bundle names its logo on a CDN; the app serves the bundle without it.
    _assert_only_asked(live_server, requests)
