"""The admin UI at /admin, through HTTP as a browser uses it: logging in, the session cookie,
lists, edits held to the API's rules, and what never appears (the password hash)."""

from __future__ import annotations

import base64
import json
import re
import time
from types import MethodType
from typing import Any, cast

import httpx
import itsdangerous
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.routing import Mount, Route

from app.admin.auth import SESSION_COOKIE, SESSION_MAX_AGE, session_key
from app.main import create_app
from app.models import User
from app.security import password_fingerprint
from tests.conftest import PASSWORD, SECRET_KEY, Account, NewAccount, make_settings, serving
from tests.databases import ScratchDatabase

Headers = dict[str, str]


async def _login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post("/admin/login", data={"username": email, "password": password})


async def admin_session(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> Headers:
    """Log in to the admin; the session's cookie as a header, so one client can act as several admins."""
    response = await _login(client, email, password)
    assert response.status_code == 302, response.text
    client.cookies.clear()
    return {"Cookie": f"{SESSION_COOKIE}={response.cookies[SESSION_COOKIE]}"}


async def password_hash(session_factory: async_sessionmaker[AsyncSession], user_id: int) -> str:
    async with session_factory() as session:
        return str((await session.execute(select(User.password_hash).where(User.id == user_id))).scalar_one())


def _is_login_redirect(response: httpx.Response) -> bool:
    return response.status_code == 302 and response.headers["location"].endswith("/admin/login")


def _user_form(**fields: str) -> dict[str, str]:
    """An edit form as the browser sends it: an unticked checkbox is not sent at all."""
    return {"name": "Alice Smith", "bio": "", "is_active": "y", "save": "Save"} | fields


async def test_login_page_renders(client: httpx.AsyncClient) -> None:
    response = await client.get("/admin/login")
    assert response.status_code == 200
    assert 'name="username"' in response.text
    assert 'name="password"' in response.text
    # Signed out, every admin page sends the browser to the login form.
    assert _is_login_redirect(await client.get("/admin/"))
    assert _is_login_redirect(await client.get("/admin/user/list"))


async def test_admin_logs_in_with_a_signed_httponly_samesite_cookie_that_expires(
    client: httpx.AsyncClient, admin: Account
) -> None:
    response = await _login(client, admin.email.upper())  # the API's normalisation: any letter case
    assert response.status_code == 302
    assert response.headers["location"].endswith("/admin/")
    cookie = response.headers["set-cookie"]
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert {"httponly", "samesite", "max-age", "path"} <= attributes
    assert "samesite=strict" in cookie.lower()
    assert f"max-age={SESSION_MAX_AGE}" in cookie.lower()
    assert "path=/admin" in cookie.lower()
    assert "secure" not in attributes  # development: plain http works
    home = await client.get("/admin/")
    assert home.status_code == 200
    assert "/admin/user/list" in home.text


async def test_production_marks_the_cookie_secure(backend: ScratchDatabase, admin: Account) -> None:
    app = create_app(make_settings(backend, environment="production", log_format="console"))
    async with serving(app) as client:
        response = await _login(client, admin.email)
    assert response.status_code == 302
    attributes = {part.strip().lower() for part in response.headers["set-cookie"].split(";")}
    assert "secure" in attributes
    assert "httponly" in attributes


async def test_wrong_password_non_admin_deactivated_and_unknown_are_refused(
    client: httpx.AsyncClient, admin: Account, alice: Account, new_account: NewAccount
) -> None:
    retired = await new_account(name="Retired Admin", admin=True)
    response = await client.patch(f"/users/{retired.id}", json={"is_active": False}, headers=admin.headers)
    assert response.status_code == 200
    for email, password in [
        (admin.email, "not the password"),
        (alice.email, PASSWORD),  # the right password, but not an admin
        (retired.email, PASSWORD),  # an admin, but deactivated
        ("nobody@example.com", PASSWORD),
        ("", ""),
    ]:
        refused = await _login(client, email, password)
        assert refused.status_code == 400, email
        assert "Invalid credentials" in refused.text
        assert SESSION_COOKIE not in refused.headers.get("set-cookie", "")
        assert _is_login_redirect(await client.get("/admin/"))


async def test_failed_admin_logins_count_in_the_api_login_limits(backend: ScratchDatabase, admin: Account) -> None:
    app = create_app(make_settings(backend, rate_limit_login_account="2/15 minutes", log_format="console"))
    async with serving(app) as client:
        for _ in range(2):
            assert (await _login(client, admin.email, "not the password")).status_code == 400
        throttled = await _login(client, admin.email, PASSWORD)  # even the right password, now
        assert throttled.status_code == 429
        assert int(throttled.headers["retry-after"]) > 0
        assert "Too many attempts" in throttled.text
        api = await client.post("/auth/token", data={"username": admin.email, "password": PASSWORD})
        assert api.status_code == 429  # one count for both doors


async def test_lists_search_and_sort(client: httpx.AsyncClient, admin: Account, alice: Account, bob: Account) -> None:
    session = await admin_session(client, admin.email)
    users = await client.get("/admin/user/list", params={"search": "alice"}, headers=session)
    assert users.status_code == 200
    assert "Alice Smith" in users.text
    assert "Bob Jones" not in users.text
    by_email = await client.get("/admin/user/list", params={"search": bob.email.upper()}, headers=session)
    assert "Bob Jones" in by_email.text
    assert "Alice Smith" not in by_email.text

    names = ["Ada Admin", "Alice Smith", "Bob Jones"]
    for order, expected in [("asc", names), ("desc", names[::-1])]:
        page = await client.get("/admin/user/list", params={"sortBy": "name", "sort": order}, headers=session)
        assert page.status_code == 200
        assert sorted(names, key=page.text.index) == expected, order

    for title in ("Gardening notes", "Cooking notes", "Travel diary"):
        response = await client.post("/posts", json={"title": title, "content": "text"}, headers=alice.headers)
        assert response.status_code == 201
    post_id = response.json()["id"]
    for body in ("First!", "Lovely trip"):
        comment = await client.post(f"/posts/{post_id}/comments", json={"body": body}, headers=bob.headers)
        assert comment.status_code == 201

    posts = await client.get("/admin/post/list", params={"search": "NOTES"}, headers=session)
    assert "Gardening notes" in posts.text
    assert "Cooking notes" in posts.text
    assert "Travel diary" not in posts.text
    by_title = await client.get("/admin/post/list", params={"sortBy": "title", "sort": "asc"}, headers=session)
    titles = ["Cooking notes", "Gardening notes", "Travel diary"]
    assert sorted(titles, key=by_title.text.index) == titles
    comments = await client.get("/admin/comment/list", params={"search": "trip"}, headers=session)
    assert "Lovely trip" in comments.text
    assert "First!" not in comments.text
    newest_first = await client.get("/admin/comment/list", params={"sortBy": "id", "sort": "desc"}, headers=session)
    assert newest_first.text.index("Lovely trip") < newest_first.text.index("First!")
    # Sorting by a column that is not offered is refused, not passed to the database.
    refused = await client.get("/admin/user/list", params={"sortBy": "password_hash"}, headers=session)
    assert refused.status_code == 400


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("x" * 101, "at most 100 characters"),
        ("   ", None),
        ("Alice\x00Smith", "NUL"),  # passes the form's own checks; only the API's schema refuses it
    ],
    ids=["too-long", "blank", "nul"],
)
async def test_an_invalid_name_is_refused_and_the_row_unchanged(
    client: httpx.AsyncClient, admin: Account, alice: Account, name: str, message: str | None
) -> None:
    session = await admin_session(client, admin.email)
    response = await client.post(f"/admin/user/edit/{alice.id}", data=_user_form(name=name), headers=session)
    assert response.status_code == 400
    assert "invalid-feedback" in response.text
    if message is not None:
        assert message in response.text
    profile = (await client.get(f"/users/{alice.id}", headers=alice.headers)).json()
    assert profile["name"] == "Alice Smith"
    assert profile["updated_at"] == alice.profile["updated_at"]


async def test_a_valid_edit_is_stored_as_the_api_would(
    client: httpx.AsyncClient, admin: Account, alice: Account
) -> None:
    session = await admin_session(client, admin.email)
    form = _user_form(name="  Alice Renamed  ", bio="Gardener")
    response = await client.post(f"/admin/user/edit/{alice.id}", data=form, headers=session)
    assert response.status_code == 302, response.text
    profile = (await client.get(f"/users/{alice.id}")).json()
    assert profile["name"] == "Alice Renamed"  # trimmed, like the API
    assert profile["bio"] == "Gardener"
    assert profile["slug"] == alice.profile["slug"]  # a rename keeps the slug


async def test_deactivating_a_user_in_the_edit_form_hides_them_from_the_api(
    client: httpx.AsyncClient, admin: Account, alice: Account, bob: Account
) -> None:
    session = await admin_session(client, admin.email)
    form = _user_form()
    del form["is_active"]
    response = await client.post(f"/admin/user/edit/{alice.id}", data=form, headers=session)
    assert response.status_code == 302, response.text
    assert (await client.get(f"/users/{alice.id}")).status_code == 404
    assert (await client.get(f"/users/{alice.id}", headers=bob.headers)).status_code == 404
    seen_by_admin = await client.get(f"/users/{alice.id}", headers=admin.headers)
    assert seen_by_admin.json()["is_active"] is False
    # Deactivated accounts cannot log in to the API either.
    login = await client.post("/auth/token", data={"username": alice.email, "password": PASSWORD})
    assert login.status_code == 401


async def test_an_admin_cannot_demote_or_deactivate_themselves(client: httpx.AsyncClient, admin: Account) -> None:
    session = await admin_session(client, admin.email)
    demote = _user_form(name="Ada Admin")
    deactivate = {"name": "Ada Admin", "bio": "", "is_admin": "y", "save": "Save"}
    for form in (demote, deactivate):
        response = await client.post(f"/admin/user/edit/{admin.id}", data=form, headers=session)
        assert response.status_code == 400
        assert "your own account" in response.text
    profile = (await client.get(f"/users/{admin.id}", headers=admin.headers)).json()
    assert profile["is_admin"] is True
    assert profile["is_active"] is True


async def test_the_password_hash_appears_on_no_admin_page(
    client: httpx.AsyncClient,
    admin: Account,
    alice: Account,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    session = await admin_session(client, admin.email)
    hashes = [await password_hash(session_factory, account.id) for account in (admin, alice)]
    pages = [
        "/admin/user/list",
        f"/admin/user/list?search={alice.email}",
        f"/admin/user/details/{alice.id}",
        f"/admin/user/edit/{alice.id}",
        f"/admin/user/details/{admin.id}",
        "/admin/user/export/csv",
        "/admin/user/export/json",
    ]
    for path in pages:
        response = await client.get(path, headers=session)
        assert response.status_code == 200, path
        for secret in hashes:
            assert secret not in response.text, path
            assert "$argon2" not in response.text, path
        assert "password" not in response.text.lower(), path


async def test_posts_and_comments_are_edited_and_deleted_by_the_api_rules(
    client: httpx.AsyncClient, admin: Account, alice: Account
) -> None:
    session = await admin_session(client, admin.email)
    post = (await client.post("/posts", json={"title": "Draft", "content": "text"}, headers=alice.headers)).json()
    comment = (await client.post(f"/posts/{post['id']}/comments", json={"body": "Hi"}, headers=alice.headers)).json()

    too_long = await client.post(
        f"/admin/post/edit/{post['id']}", data={"title": "t" * 201, "content": "text", "save": "Save"}, headers=session
    )
    assert too_long.status_code == 400
    assert (await client.get(f"/posts/{post['id']}")).json()["title"] == "Draft"
    edited = await client.post(
        f"/admin/post/edit/{post['id']}", data={"title": " Final ", "content": "new", "save": "Save"}, headers=session
    )
    assert edited.status_code == 302, edited.text
    assert (await client.get(f"/posts/{post['id']}")).json()["title"] == "Final"

    edit_comment = f"/admin/comment/edit/{comment['id']}"
    empty = await client.post(edit_comment, data={"body": "", "save": "Save"}, headers=session)
    assert empty.status_code == 400
    huge = await client.post(edit_comment, data={"body": "b" * 10_001, "save": "Save"}, headers=session)
    assert huge.status_code == 400
    assert "at most 10000" in huge.text
    comments = (await client.get(f"/posts/{post['id']}/comments")).json()["items"]
    assert [item["body"] for item in comments] == ["Hi"]

    deleted = await client.delete(f"/admin/post/delete?pks={post['id']}", headers=session)
    assert deleted.status_code == 200
    assert (await client.get(f"/posts/{post['id']}")).status_code == 404
    assert (await client.get(f"/posts/{post['id']}/comments")).status_code == 404


async def test_users_are_neither_created_nor_deleted_here(
    client: httpx.AsyncClient, admin: Account, alice: Account
) -> None:
    session = await admin_session(client, admin.email)
    assert (await client.get("/admin/user/create", headers=session)).status_code == 403
    assert (await client.delete(f"/admin/user/delete?pks={alice.id}", headers=session)).status_code == 403
    assert (await client.get(f"/users/{alice.id}")).status_code == 200
    page = await client.get(f"/admin/user/edit/{alice.id}", headers=session)
    fields = set(re.findall(r'<(?:input|textarea)[^>]* name="([^"]+)"', page.text))
    assert fields == {"name", "bio", "is_active", "is_admin", "save"}


async def test_a_demoted_or_deactivated_admin_loses_access_at_once(
    client: httpx.AsyncClient, admin: Account, new_account: NewAccount
) -> None:
    for change in ({"is_admin": False}, {"is_active": False}, {"password": "a brand new password"}):
        other = await new_account(name="Other Admin", admin=True)
        session = await admin_session(client, other.email)
        assert (await client.get("/admin/user/list", headers=session)).status_code == 200
        response = await client.patch(f"/users/{other.id}", json=change, headers=admin.headers)
        assert response.status_code == 200
        refused = await client.get("/admin/user/list", headers=session)
        assert _is_login_redirect(refused), change
        # The refusal also clears the cookie in the browser.
        assert refused.headers["set-cookie"].startswith(f"{SESSION_COOKIE}=null")


def _forged_session(claims: dict[str, object], *, secret: str = SECRET_KEY) -> Headers:
    """A session cookie as the app signs it (Starlette's SessionMiddleware format)."""
    payload = base64.b64encode(json.dumps(claims).encode())
    value = itsdangerous.TimestampSigner(session_key(secret)).sign(payload).decode()
    return {"Cookie": f"{SESSION_COOKIE}={value}"}


async def test_a_session_expires_after_its_lifetime_and_must_be_signed_with_the_key(
    client: httpx.AsyncClient, admin: Account, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    fingerprint = password_fingerprint(await password_hash(session_factory, admin.id))
    now = int(time.time())
    fresh = {"user_id": admin.id, "pwd": fingerprint, "since": now}
    assert (await client.get("/admin/", headers=_forged_session(fresh))).status_code == 200
    stale = fresh | {"since": now - SESSION_MAX_AGE - 60}
    assert _is_login_redirect(await client.get("/admin/", headers=_forged_session(stale)))
    other_key = _forged_session(fresh, secret="another-secret-key-with-plenty-of-entropy")
    assert _is_login_redirect(await client.get("/admin/", headers=other_key))
    # The JWT secret itself is not the session key: the cookie's key is derived for this use alone.
    raw_key = base64.b64encode(json.dumps(fresh).encode())
    unsigned = itsdangerous.TimestampSigner(SECRET_KEY).sign(raw_key).decode()
    assert _is_login_redirect(await client.get("/admin/", headers={"Cookie": f"{SESSION_COOKIE}={unsigned}"}))


async def test_logout_ends_the_session(client: httpx.AsyncClient, admin: Account) -> None:
    response = await _login(client, admin.email)
    assert response.status_code == 302
    assert (await client.get("/admin/")).status_code == 200
    logout = await client.get("/admin/logout")
    assert _is_login_redirect(logout)
    assert _is_login_redirect(await client.get("/admin/"))


async def test_each_app_serves_its_admin_from_its_own_engine(app: FastAPI, backend: ScratchDatabase) -> None:
    # sqladmin keeps the engine on the view class: another app built in the same process (the
    # module-level one, a test's) must not take over this app's admin.
    other = create_app(make_settings(backend, log_format="console"))
    try:
        for application in (app, other):
            views = _admin_of(application).views
            assert {view.identity for view in views} == {"user", "post", "comment"}
            pool = application.state.db.engine.sync_engine.pool
            for view in views:
                assert view.session_maker.kw["bind"].sync_engine.pool is pool
    finally:
        await other.state.db.dispose()


def _admin_of(application: FastAPI) -> Any:
    mount = next(route for route in application.routes if isinstance(route, Mount) and route.path == "/admin")
    # Each admin route's endpoint is a method of the sqladmin Admin that serves it.
    index = next(route for route in mount.routes if isinstance(route, Route) and route.name == "index")
    return cast(MethodType, index.endpoint).__self__
