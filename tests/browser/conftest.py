"""A headless Chromium and the app in a uvicorn process of its own, for tests that click through pages.

The browser is Debian's `chromium`, installed by the first test that needs it (tests/debian.py):
playwright's own browser download is never used. Nothing here takes `backend`, so these tests run
once per session whatever `--db` says, on a fresh SQLite file.

playwright's sync API marks its event loop as running in the main thread for as long as it is
started, so no asyncio test can run meanwhile ("Runner.run() cannot be called from a running event
loop"). The browser therefore lives for this package only: pytest stops it before the next test
outside tests/browser, which may be async. For the same reason the tests here are sync.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.conftest import GENEROUS_RATE_LIMIT
from tests.debian import ensure_command
from tests.servers import ROOT, served

SCREENSHOTS = ROOT / "artifacts" / "screenshots"
# The machines are slow and shared: a page that is merely late must not fail a test.
TIMEOUT_MS = 15_000

Screenshot = Callable[[Page, str], Path]


@dataclass(frozen=True, slots=True)
class LiveServer:
    url: str
    admin_email: str
    admin_password: str


@pytest.fixture(scope="session")
def chromium_executable() -> Path:
    return ensure_command("chromium", "chromium")


@pytest.fixture(scope="package")
def browser(chromium_executable: Path) -> Iterator[Browser]:
    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
        # --no-sandbox: Chromium refuses to start its sandbox as root, and the tests run as root.
        launched = playwright.chromium.launch(executable_path=chromium_executable, headless=True, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    # A context per test: no cookie, token or local storage leaks from one test into the next.
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def screenshot() -> Screenshot:
    def _screenshot(page: Page, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=path, full_page=True)
        return path

    return _screenshot


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    directory = tmp_path_factory.mktemp("live-server")
    admin_email, admin_password = "admin@example.com", "browser-admin-password"
    with served(
        f"sqlite:///{directory / 'blog.db'}",
        directory / "server.log",
        MIGRATE_ON_STARTUP="true",
        # Development: the admin's session cookie is not marked Secure, so it travels over plain http.
        ENVIRONMENT="development",
        ADMIN_EMAIL=admin_email,
        ADMIN_PASSWORD=admin_password,
        ADMIN_NAME="Browser Admin",
        # Tests sign up and log in from one address; the throttles stay on, at limits none reaches.
        RATE_LIMIT_LOGIN_ACCOUNT=GENEROUS_RATE_LIMIT,
        RATE_LIMIT_LOGIN_ADDRESS=GENEROUS_RATE_LIMIT,
        RATE_LIMIT_SIGNUP_ADDRESS=GENEROUS_RATE_LIMIT,
    ) as server:
        yield LiveServer(server.url, admin_email, admin_password)
