"""/admin in a real browser: an admin logs in, finds a user, deactivates them through the edit
form, and the API stops showing that user."""

from __future__ import annotations

import itertools
import re

import httpx
from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveServer, Screenshot
from tests.conftest import PASSWORD

_emails = itertools.count(1)


def _register(server: LiveServer, name: str) -> dict[str, object]:
    # The server lives for the session: each call gets an address no earlier test used.
    email = f"admin-browser-{next(_emails)}@example.com"
    response = httpx.post(f"{server.url}/users", json={"email": email, "name": name, "password": PASSWORD}, timeout=15)
    assert response.status_code == 201, response.text
    profile: dict[str, object] = response.json()
    return profile


def test_an_admin_deactivates_a_user_through_the_edit_form(
    page: Page, live_server: LiveServer, screenshot: Screenshot
) -> None:
    user = _register(live_server, "Walter Wren")
    assert httpx.get(f"{live_server.url}/users/{user['id']}", timeout=15).status_code == 200

    # Signed out, the admin sends the browser to its own login form.
    page.goto(f"{live_server.url}/admin/")
    expect(page).to_have_url(re.compile(r"/admin/login$"))
    page.locator('input[name="username"]').fill(live_server.admin_email)
    page.locator('input[name="password"]').fill(live_server.admin_password)
    page.get_by_role("button", name="Login").click()
    expect(page).to_have_url(re.compile(r"/admin/$"))

    page.get_by_role("link", name="Users").click()
    expect(page).to_have_url(re.compile(r"/admin/user/list"))
    page.locator("#search-input").fill(str(user["email"]))
    page.locator("#search-button").click()
    expect(page).to_have_url(re.compile(r"search="))
    row = page.locator("tbody tr").filter(has_text=str(user["email"]))
    expect(row).to_have_count(1)
    expect(page.locator("tbody tr")).to_have_count(1)

    # By its link: Bootstrap's tooltips take the icon's `title` away once the page's scripts run.
    row.locator(f'a[href*="/admin/user/edit/{user["id"]}"]').click()
    expect(page).to_have_url(re.compile(rf"/admin/user/edit/{user['id']}"))
    # The password hash is not a field of the form, nor anywhere on the page.
    expect(page.locator('[name="password_hash"]')).to_have_count(0)
    is_active = page.locator('input[name="is_active"]')
    expect(is_active).to_be_checked()
    is_active.uncheck()
    page.locator('input[name="save"][value="Save"]').click()
    expect(page).to_have_url(re.compile(r"/admin/user/list"))
    # The saved row, as the details page shows it: is_active is now off.
    page.goto(f"{live_server.url}/admin/user/details/{user['id']}")
    expect(page.locator("body")).to_contain_text(str(user["email"]))
    shot = screenshot(page, "admin-user-deactivated")
    assert shot.is_file()
    assert shot.stat().st_size > 0

    # The API hides a deactivated user from everyone but admins.
    assert httpx.get(f"{live_server.url}/users/{user['id']}", timeout=15).status_code == 404
    token = httpx.post(
        f"{live_server.url}/auth/token",
        data={"username": live_server.admin_email, "password": live_server.admin_password},
        timeout=15,
    ).json()["access_token"]
    as_admin = httpx.get(
        f"{live_server.url}/users/{user['id']}", headers={"Authorization": f"Bearer {token}"}, timeout=15
    )
    assert as_admin.status_code == 200
    assert as_admin.json()["is_active"] is False
