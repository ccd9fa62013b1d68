"""Who may use /admin: active admins, logged in with their API email and password.

The session is a signed cookie (itsdangerous, through Starlette's SessionMiddleware) that holds
the account's id, a fingerprint of its password hash and the time of the login. Every admin
request reads the account again, so an admin who is demoted, deactivated or changes their
password loses the admin at their next click, not when the cookie expires.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

from sqladmin.authentication import AuthenticationBackend
from sqladmin.templating import Jinja2Templates
from starlette.requests import Request
from starlette.responses import Response

from app.auth import repository
from app.auth.service import InvalidCredentials, issue_token
from app.client_address import client_address
from app.config import Settings
from app.database import Connection, Database
from app.emails import normalize_email
from app.errors import RateLimited
from app.rate_limits import RateLimits
from app.rows import AnyRow
from app.security import password_fingerprint

ADMIN_PATH = "/admin"
SESSION_COOKIE = "admin_session"
# A working day. Counted from the login, not from the last request: sqladmin's flash messages
# re-sign the cookie, which would otherwise make an admin session last as long as it is used.
SESSION_MAX_AGE = 8 * 60 * 60
LOGIN_TEMPLATE = "sqladmin/login.html"


def session_key(secret: str) -> str:
    """The cookie's signing key, derived from SECRET_KEY: a value signed for one purpose (an
    access token, an admin session) is never valid for the other."""
    return hmac.new(secret.encode(), b"blogapi admin session", hashlib.sha256).hexdigest()


class AdminAuthentication(AuthenticationBackend):
    def __init__(self, *, database: Database, settings: Settings, rate_limits: RateLimits) -> None:
        super().__init__(
            secret_key=session_key(settings.jwt_secret),
            session_cookie=SESSION_COOKIE,
            max_age=SESSION_MAX_AGE,
            # Only the admin's requests carry it; the API never sees it.
            path=ADMIN_PATH,
            # sqladmin's forms carry no CSRF token: the browser must not send the cookie with
            # any request another site starts, not even a top-level navigation.
            same_site="strict",
            https_only=settings.environment == "production",
        )
        self.database = database
        self.settings = settings
        self.rate_limits = rate_limits
        # Set by install_admin once the Admin exists, to render refusals that need more than
        # sqladmin's "Invalid credentials." (a throttled login).
        self.templates: Jinja2Templates | None = None

    async def login(self, request: Request) -> Response | bool:
        form = await request.form()
        email, password = form.get("username"), form.get("password")
        if not isinstance(email, str) or not isinstance(password, str) or not email or not password:
            return False
        connection = Connection(self.database.gate)
        try:
            # The API's own login: same normalisation, password check, deactivated accounts
            # refused, timing equalised, and failures counted in the same rate limits.
            await issue_token(
                connection,
                email=email,
                password=password,
                settings=self.settings,
                rate_limits=self.rate_limits,
                address=client_address(request, self.settings.trusted_proxies),
            )
            account = await repository.account_by_email(connection, normalize_email(email))
        except InvalidCredentials:
            return False
        except RateLimited as exc:
            return await self._throttled(request, exc)
        finally:
            await connection.release()
        if account is None or not _is_admin(account):
            return False
        # A new session, not the one the browser came with: nothing set before the login survives it.
        request.session.clear()
        request.session.update(
            {"user_id": account.id, "pwd": password_fingerprint(account.password_hash), "since": int(time.time())}
        )
        return True

    async def logout(self, request: Request) -> Response | bool:
        request.session.clear()
        return False

    async def authenticate(self, request: Request) -> Response | bool:
        user_id, fingerprint, since = _claims(request.session)
        if user_id is None or time.time() - since > SESSION_MAX_AGE:
            request.session.clear()
            return False
        connection = Connection(self.database.gate)
        try:
            account = await repository.read_account(connection, user_id)
        finally:
            await connection.release()
        if account is None or not _is_admin(account) or password_fingerprint(account.password_hash) != fingerprint:
            request.session.clear()
            return False
        return True

    async def _throttled(self, request: Request, exc: RateLimited) -> Response | bool:
        if self.templates is None:
            return False
        response = await self.templates.TemplateResponse(
            request, LOGIN_TEMPLATE, {"error": exc.detail}, status_code=exc.status_code
        )
        response.headers.update(exc.headers or {})
        return response


def _is_admin(account: AnyRow) -> bool:
    return bool(account.is_active) and bool(account.is_admin)


def _claims(session: dict[str, Any]) -> tuple[int | None, str, float]:
    """The session's user id (None when it holds no valid login), password fingerprint and login time."""
    user_id, fingerprint, since = session.get("user_id"), session.get("pwd"), session.get("since")
    if type(user_id) is not int or not isinstance(fingerprint, str) or type(since) is not int:
        return None, "", 0.0
    return user_id, fingerprint, float(since)
