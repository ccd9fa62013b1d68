"""What both baseline apps share: settings, the pool, the SQL, cursors, tokens, passwords, JSON shapes.

Nothing here imports `app`, which imports SQLAlchemy: the baselines are what the same endpoints
cost over raw asyncpg. Where the wire format must equal the app's -- cursors (format, key, HMAC,
scope), token claims, password hashing and its timing rule, error details -- the rule is restated
here on purpose, and `bench/baseline/compare.py` checks the result against the running app.

The handlers below take already-validated arguments and return plain dicts ready for
`pydantic_core.to_json`; the two apps differ only in routing and in how much they validate, which
is what the benchmark compares.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Annotated, Any, Literal, NamedTuple, Protocol

import anyio
import asyncpg
import jwt
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import AfterValidator, EmailStr, Field, TypeAdapter, ValidationError

# Limits equal to the app's (its models and pagination), so both reject the same input.
MAX_ID = 2**31 - 1
MAX_SKIP = 2**31 - 1
MAX_LIMIT = 100
DEFAULT_LIMIT = 10
MAX_CURSOR_LENGTH = 2048
TITLE_MAX_LENGTH = 200
CONTENT_MAX_LENGTH = 100_000
NAME_MAX_LENGTH = 100
EMAIL_MAX_LENGTH = 255
RECENT_POSTS = 5

PostOrder = Literal["created_at", "id", "views", "title"]
UserOrder = Literal["id", "created_at", "name"]
SortOrder = Literal["asc", "desc"]
POST_ORDERS: tuple[PostOrder, ...] = ("created_at", "id", "views", "title")
USER_ORDERS: tuple[UserOrder, ...] = ("id", "created_at", "name")
SORT_ORDERS: tuple[SortOrder, ...] = ("asc", "desc")

JSON = dict[str, Any]


# --- asyncpg, typed as far as these apps use it -------------------------------------------------


class Record(Protocol):
    def __getitem__(self, key: int | str, /) -> Any: ...


class Connection(Protocol):
    async def fetch(self, query: str, *args: object) -> list[Record]: ...
    async def fetchrow(self, query: str, *args: object) -> Record | None: ...
    async def fetchval(self, query: str, *args: object) -> Any: ...


class Pool(Connection, Protocol):
    def acquire(self) -> AbstractAsyncContextManager[Connection]: ...
    async def close(self) -> None: ...


# --- settings ------------------------------------------------------------------------------------

_POSTGRES_SCHEMES = {"postgres", "postgresql", "postgres+asyncpg", "postgresql+asyncpg"}


def to_dsn(url: str) -> str:
    """An asyncpg DSN from a URL as the app accepts it (`postgresql://`, `postgresql+asyncpg://`, ...)."""
    scheme, separator, rest = url.strip().partition("://")
    if not separator or scheme not in _POSTGRES_SCHEMES:
        raise ValueError(f"DATABASE_URL must be a PostgreSQL URL (postgresql://...), not {scheme or url!r}")
    return f"postgresql://{rest}"


@dataclass(frozen=True, slots=True)
class Config:
    # Kept out of repr: the DSN may carry a password, and the secret signs tokens.
    dsn: str = field(repr=False)
    secret: str = field(repr=False)
    pool_size: int
    token_lifetime: timedelta

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Config:
        url = environ.get("DATABASE_URL")
        if not url:
            raise SystemExit("configuration error: DATABASE_URL must be set (postgresql://...)")
        try:
            dsn = to_dsn(url)
            pool_size = int(environ.get("DB_POOL_SIZE", "10"))
            minutes = int(environ.get("ACCESS_TOKEN_EXPIRE_MINUTES", "30"))
        except ValueError as exc:
            raise SystemExit(f"configuration error: {exc}") from None
        if pool_size < 1:
            raise SystemExit("configuration error: DB_POOL_SIZE must be at least 1")
        # As the app does without SECRET_KEY: a key for this process only. Cursors and tokens then
        # match no other process, so a side-by-side comparison needs SECRET_KEY set for both.
        secret = environ.get("SECRET_KEY") or secrets.token_urlsafe(48)
        return cls(dsn=dsn, secret=secret, pool_size=pool_size, token_lifetime=timedelta(minutes=minutes))


async def create_pool(config: Config) -> Pool:
    # A fixed-size pool, like the app's pool_size (its overflow is not modelled); timeouts equal
    # to the app's defaults, so a dead database fails a request instead of holding it.
    pool: Pool = await asyncpg.create_pool(
        config.dsn, min_size=config.pool_size, max_size=config.pool_size, timeout=5.0, command_timeout=30.0
    )
    return pool


# --- errors --------------------------------------------------------------------------------------

_BEARER = {"WWW-Authenticate": "Bearer"}


class ApiError(Exception):
    """Rendered by either app as `{"detail": ...}` with this status and these headers."""

    def __init__(self, status_code: int, detail: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.headers = dict(headers) if headers else None


def user_not_found() -> ApiError:
    return ApiError(404, "User not found")


def post_not_found() -> ApiError:
    return ApiError(404, "Post not found")


def not_authenticated(detail: str = "Not authenticated") -> ApiError:
    return ApiError(401, detail, _BEARER)


# --- cursors (the app's app/pagination.py format) -----------------------------------------------


class Position(NamedTuple):
    """Where a page ended: the sort value and id of its last row."""

    value: Any
    id: int


class InvalidCursor(ValueError):
    pass


_ENCODE: dict[type, Callable[[Any], Any]] = {datetime: datetime.isoformat, int: int, str: str}
_DECODE: dict[str, Callable[[Any], Any]] = {"datetime": datetime.fromisoformat, "int": int, "str": str}


@cache
def _cursor_key(secret: str) -> bytes:
    return hashlib.sha256(b"pagination-cursor:" + secret.encode()).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(body: str, secret: str) -> str:
    return _b64(hmac.new(_cursor_key(secret), body.encode(), hashlib.sha256).digest()[:16])


def encode_cursor(position: Position, *, scope: str, secret: str) -> str:
    kind = type(position.value)
    payload = {"s": scope, "k": kind.__name__, "v": _ENCODE[kind](position.value), "i": position.id}
    body = _b64(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode())
    return f"{body}.{_signature(body, secret)}"


def decode_cursor(cursor: str, *, scope: str, secret: str) -> Position:
    body, _, signature = cursor.partition(".")
    # Bytes, not str: compare_digest raises TypeError on non-ASCII str.
    if not hmac.compare_digest(signature.encode(), _signature(body, secret).encode()):
        raise InvalidCursor("cursor is malformed or was not issued by this server")
    try:
        payload = json.loads(_unb64(body))
        position = Position(_DECODE[payload["k"]](payload["v"]), int(payload["i"]))
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise InvalidCursor("cursor is malformed") from exc
    if payload.get("s") != scope:
        raise InvalidCursor("cursor belongs to another ordering or filter; start again without it")
    return position


def start_position(cursor: str | None, skip: int, *, scope: str, secret: str) -> Position | None:
    """Where a cursor page starts; None for an offset page. A bad cursor is a 422, as in the app."""
    if cursor is None:
        return None
    if skip:
        raise ApiError(422, "use either skip or cursor, not both")
    try:
        return decode_cursor(cursor, scope=scope, secret=secret)
    except InvalidCursor as exc:
        raise ApiError(422, str(exc)) from None


def posts_scope(order_by: str, order: str, author_id: int | None, q: str | None) -> str:
    query = hashlib.sha256((q or "").encode()).hexdigest()[:12]
    return f"posts:{order_by}:{order}:{author_id}:{query}"


def _like_pattern(text: str) -> str:
    # SQLAlchemy's icontains(autoescape=True): "/" escapes itself and the wildcards.
    escaped = text.replace("/", "//").replace("%", "/%").replace("_", "/_")
    return f"%{escaped}%"


# --- JSON shapes (the app's response models, field for field) -----------------------------------

# Statements are assembled from these constants and from identifiers picked from fixed lists
# (hence the S608 exemptions); every value travels as a bind parameter.
_USER_COLUMNS = "id, name, slug, bio, is_active, is_admin, created_at, updated_at"
_POST_COLUMNS = "p.id, p.title, p.content, p.views, p.author_id, u.name AS author_name, p.created_at, p.updated_at"
_COMMENT_COLUMNS = "c.id, c.post_id, c.author_id, u.name AS author_name, c.body, c.created_at, c.updated_at"


def post_json(row: Record, author_name: str | None = None) -> JSON:
    return {
        "id": row["id"],
        "title": row["title"],
        "content": row["content"],
        "views": row["views"],
        "author_id": row["author_id"],
        "author": {"id": row["author_id"], "name": row["author_name"] if author_name is None else author_name},
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def comment_json(row: Record) -> JSON:
    return {
        "id": row["id"],
        "post_id": row["post_id"],
        "author_id": row["author_id"],
        "author": {"id": row["author_id"], "name": row["author_name"]},
        "body": row["body"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def user_public_json(row: Record) -> JSON:
    """The profile as an anonymous caller sees it (the app's UserPublic: no email)."""
    return {
        "id": row["id"],
        "name": row["name"],
        "slug": row["slug"],
        "bio": row["bio"],
        "is_active": row["is_active"],
        "is_admin": row["is_admin"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def post_summary_json(row: Record) -> JSON:
    return {"id": row["id"], "title": row["title"], "views": row["views"], "created_at": row["created_at"]}


# --- users ---------------------------------------------------------------------------------------

_USER_SORT_EXPRESSIONS: dict[str, str] = {"id": "id", "created_at": "created_at", "name": "lower(name)"}

# Each author's newest posts for a whole page of authors in one statement: one index range scan
# on (author_id, created_at, id) per author, stopped after RECENT_POSTS rows.
_RECENT_POSTS_SQL = f"""
SELECT a.id AS author_id, p.id, p.title, p.views, p.created_at
FROM unnest($1::int[]) AS a(id)
CROSS JOIN LATERAL (
    SELECT q.id, q.title, q.views, q.created_at
    FROM posts AS q
    WHERE q.author_id = a.id
    ORDER BY q.created_at DESC, q.id DESC
    LIMIT {RECENT_POSTS}
) AS p
ORDER BY a.id, p.created_at DESC, p.id DESC
"""  # noqa: S608


_USER_SQL = f"SELECT {_USER_COLUMNS} FROM users WHERE id = $1"  # noqa: S608


async def get_user(pool: Pool, user_id: int) -> JSON:
    """An anonymous caller's view: a deactivated account does not exist."""
    row = await pool.fetchrow(_USER_SQL, user_id)
    if row is None or not row["is_active"]:
        raise user_not_found()
    return user_public_json(row)


@cache
def _users_sql(order_by: str, descending: bool, *, search: bool) -> tuple[str, str]:
    """(page, count) statements for one shape of query, built once: asyncpg caches them prepared."""
    # Anonymous callers see active users only.
    where = "WHERE is_active" + (" AND name ILIKE $1 ESCAPE '/'" if search else "")
    direction = "DESC" if descending else "ASC"
    first = 2 if search else 1
    page = (
        f"SELECT {_USER_COLUMNS} FROM users {where} "  # noqa: S608
        f"ORDER BY {_USER_SORT_EXPRESSIONS[order_by]} {direction}, id {direction} "
        f"OFFSET ${first} LIMIT ${first + 1}"
    )
    return page, f"SELECT count(*) FROM users {where}"  # noqa: S608


async def list_users(
    pool: Pool,
    *,
    skip: int,
    limit: int,
    order_by: str = "created_at",
    order: str = "desc",
    q: str | None = None,
    with_posts: bool,
    with_total: bool,
) -> JSON:
    page_sql, count_sql = _users_sql(order_by, order == "desc", search=bool(q))
    filters: list[object] = [_like_pattern(q)] if q else []
    async with pool.acquire() as connection:
        rows = await connection.fetch(page_sql, *filters, skip, limit)
        items = [user_public_json(row) for row in rows]
        if with_posts:
            recent: defaultdict[int, list[JSON]] = defaultdict(list)
            if rows:
                for post in await connection.fetch(_RECENT_POSTS_SQL, [row["id"] for row in rows]):
                    recent[post["author_id"]].append(post_summary_json(post))
            for item in items:
                item["posts"] = recent[item["id"]]
        total = await connection.fetchval(count_sql, *filters) if with_total else None
    return {"items": items, "total": total, "skip": skip, "limit": limit}


# --- posts ---------------------------------------------------------------------------------------


_POST_SORT_COLUMNS: dict[str, str] = {name: f"p.{name}" for name in POST_ORDERS}


@cache
def _posts_sql(order_by: str, descending: bool, *, by_author: bool, search: bool, keyset: bool) -> tuple[str, str]:
    """(page, count) statements for one shape of query, built once: asyncpg caches them prepared.

    Parameters, each only when used: author_id, title pattern, keyset value and id, offset, limit.
    """
    column = _POST_SORT_COLUMNS[order_by]  # a KeyError, never SQL, for anything else
    conditions: list[str] = []
    number = 0

    def parameter() -> str:
        nonlocal number
        number += 1
        return f"${number}"

    if by_author:
        conditions.append(f"p.author_id = {parameter()}")
    if search:
        conditions.append(f"p.title ILIKE {parameter()} ESCAPE '/'")
    filters = list(conditions)
    beyond = "<" if descending else ">"
    if keyset and order_by == "id":
        conditions.append(f"p.id {beyond} {parameter()}")
    elif keyset:
        # `col <= v AND (col < v OR id < i)` as the app writes it: the leading bound is an index range.
        value, id_ = parameter(), parameter()
        conditions.append(f"{column} {beyond}= {value} AND ({column} {beyond} {value} OR p.id {beyond} {id_})")
    direction = "DESC" if descending else "ASC"
    # The page's ids first (an index-only scan), its posts and authors after: an offset then
    # skips index entries, not whole posts joined to their authors.
    order = f"ORDER BY {column} {direction}, p.id {direction}"
    page = (
        f"SELECT {_POST_COLUMNS} FROM (SELECT p.id FROM posts AS p{_where(conditions)} {order} "  # noqa: S608
        f"OFFSET {parameter()} LIMIT {parameter()}) AS page "
        f"JOIN posts AS p ON p.id = page.id JOIN users AS u ON u.id = p.author_id {order}"
    )
    return page, f"SELECT count(*) FROM posts AS p{_where(filters)}"  # noqa: S608


def _where(conditions: Sequence[str]) -> str:
    return f" WHERE {' AND '.join(conditions)}" if conditions else ""


async def list_posts(
    pool: Pool,
    secret: str,
    *,
    skip: int,
    limit: int,
    cursor: str | None,
    order_by: str,
    order: str,
    author_id: int | None,
    q: str | None,
    with_total: bool,
) -> JSON:
    scope = posts_scope(order_by, order, author_id, q)
    start = start_position(cursor, skip, scope=scope, secret=secret)
    page_sql, count_sql = _posts_sql(
        order_by, order == "desc", by_author=author_id is not None, search=bool(q), keyset=start is not None
    )
    filters: list[object] = []
    if author_id is not None:
        filters.append(author_id)
    if q:
        filters.append(_like_pattern(q))
    keyset: list[object] = []
    if start is not None:
        keyset = [start.id] if order_by == "id" else [start.value, start.id]
    async with pool.acquire() as connection:
        # One row more than asked says whether a next page exists, without counting.
        rows = await connection.fetch(page_sql, *filters, *keyset, skip, limit + 1)
        total = await connection.fetchval(count_sql, *filters) if with_total else None
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor(Position(last[order_by], last["id"]), scope=scope, secret=secret)
    return {
        "items": [post_json(row) for row in rows[:limit]],
        "total": total,
        "skip": skip,
        "limit": limit,
        "next_cursor": next_cursor,
    }


_INSERT_POST_SQL = """
INSERT INTO posts (title, content, author_id) VALUES ($1, $2, $3)
RETURNING id, title, content, views, author_id, created_at, updated_at
"""


async def create_post(pool: Pool, author: Author, *, title: str, content: str) -> JSON:
    """One statement, so no explicit transaction: it commits on its own."""
    try:
        row = await pool.fetchrow(_INSERT_POST_SQL, title, content, author.id)
    except asyncpg.ForeignKeyViolationError:
        # The account was deleted since the token was checked: the token no longer stands for anyone.
        raise not_authenticated("Invalid or expired token") from None
    assert row is not None  # INSERT ... RETURNING returns its row
    return post_json(row, author_name=author.name)


async def add_view(pool: Pool, post_id: int) -> JSON:
    # updated_at tracks edits, not reads: this UPDATE leaves it alone, as the app's does.
    views = await pool.fetchval("UPDATE posts SET views = views + 1 WHERE id = $1 RETURNING views", post_id)
    if views is None:
        raise post_not_found()
    return {"id": post_id, "views": views}


# --- comments ------------------------------------------------------------------------------------

_POST_EXISTS_SQL = "SELECT EXISTS (SELECT 1 FROM posts WHERE id = $1)"
_COMMENTS_FROM = "FROM comments AS c JOIN users AS u ON u.id = c.author_id WHERE c.post_id = $1"
_COMMENTS_SQL = f"SELECT {_COMMENT_COLUMNS} {_COMMENTS_FROM} ORDER BY c.created_at, c.id OFFSET $2 LIMIT $3"
_COMMENTS_AFTER_SQL = (
    f"SELECT {_COMMENT_COLUMNS} {_COMMENTS_FROM} AND c.created_at >= $2 AND (c.created_at > $2 OR c.id > $3) "
    "ORDER BY c.created_at, c.id OFFSET $4 LIMIT $5"
)
_COMMENTS_COUNT_SQL = "SELECT count(*) FROM comments WHERE post_id = $1"


async def list_comments(
    pool: Pool, secret: str, post_id: int, *, skip: int, limit: int, cursor: str | None, with_total: bool
) -> JSON:
    """A post's comments, oldest first; 404 when the post does not exist."""
    scope = f"comments:{post_id}"
    async with pool.acquire() as connection:
        try:
            start = start_position(cursor, skip, scope=scope, secret=secret)
        except ApiError:
            # The app checks the post before the cursor: a missing post is a 404 whatever the cursor.
            if not await connection.fetchval(_POST_EXISTS_SQL, post_id):
                raise post_not_found() from None
            raise
        if start is None:
            rows = await connection.fetch(_COMMENTS_SQL, post_id, skip, limit + 1)
        else:
            rows = await connection.fetch(_COMMENTS_AFTER_SQL, post_id, start.value, start.id, skip, limit + 1)
        # Only an empty page needs the existence check: rows prove the post exists.
        if not rows and not await connection.fetchval(_POST_EXISTS_SQL, post_id):
            raise post_not_found()
        total = await connection.fetchval(_COMMENTS_COUNT_SQL, post_id) if with_total else None
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor(Position(last["created_at"], last["id"]), scope=scope, secret=secret)
    return {
        "items": [comment_json(row) for row in rows[:limit]],
        "total": total,
        "skip": skip,
        "limit": limit,
        "next_cursor": next_cursor,
    }


# --- passwords (the app's app/security.py parameters and timing rule) ----------------------------

_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, type=Type.ID)
# argon2 is CPU-bound: worker threads, no more at once than there are cores to run them.
_hash_limiter = anyio.CapacityLimiter(max(2, os.cpu_count() or 2))
# An unknown email is verified against this, so it costs what a wrong password costs.
_DUMMY_HASH = _hasher.hash("timing-equaliser-not-a-password")


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def verify_password(password_hash: str | None, password: str) -> bool:
    ok = await anyio.to_thread.run_sync(_verify, password_hash or _DUMMY_HASH, password, limiter=_hash_limiter)
    return ok and password_hash is not None


async def hash_password(password: str) -> str:
    return await anyio.to_thread.run_sync(_hasher.hash, password, limiter=_hash_limiter)


def password_fingerprint(password_hash: str) -> str:
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


# Registration stores addresses normalised and lower-case; a login must look up the same form.
_email_adapter: TypeAdapter[str] = TypeAdapter(
    Annotated[EmailStr, Field(max_length=EMAIL_MAX_LENGTH), AfterValidator(str.lower)]
)


def normalize_email(value: str) -> str:
    try:
        return _email_adapter.validate_python(value.strip())
    except ValidationError:
        return value.strip().lower()


# --- tokens (the app's app/security.py claims) ---------------------------------------------------

ALGORITHM = "HS256"


@dataclass(frozen=True, slots=True)
class Author:
    """The authenticated caller, as much of it as a post needs."""

    id: int
    name: str


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer ...` header, parsed as FastAPI's OAuth2PasswordBearer does."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def _claims(token: str, secret: str) -> tuple[int, str] | None:
    try:
        # Pinning the algorithm rejects `alg: none` and key-confusion tokens.
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["sub", "exp", "iat", "pwd"]})
        return int(claims["sub"]), str(claims["pwd"])
    except (jwt.InvalidTokenError, ValueError, TypeError):
        return None


async def authenticate(pool: Pool, secret: str, token: str | None) -> Author:
    """The caller a bearer token stands for: a live, active account whose password is unchanged."""
    if token is None:
        raise not_authenticated()
    claims = _claims(token, secret)
    if claims is None or not 1 <= claims[0] <= MAX_ID:
        raise not_authenticated("Invalid or expired token")
    user_id, fingerprint = claims
    row = await pool.fetchrow("SELECT name, is_active, password_hash FROM users WHERE id = $1", user_id)
    if row is None or not row["is_active"] or password_fingerprint(row["password_hash"]) != fingerprint:
        raise not_authenticated("Invalid or expired token")
    return Author(id=user_id, name=row["name"])


def _access_token(user_id: int, password_hash: str, *, secret: str, lifetime: timedelta) -> str:
    now = datetime.now(UTC)
    claims = {"sub": str(user_id), "iat": now, "exp": now + lifetime, "pwd": password_fingerprint(password_hash)}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


async def issue_token(pool: Pool, config: Config, *, username: str, password: str) -> JSON:
    """Wrong password, unknown email and deactivated account fail alike, in about the same time."""
    invalid = not_authenticated("Incorrect email or password")
    # fetchrow gives the connection back before argon2 runs: logins never hold pooled connections.
    row = await pool.fetchrow(
        "SELECT id, password_hash, is_active FROM users WHERE email = $1", normalize_email(username)
    )
    valid = await verify_password(row["password_hash"] if row else None, password)
    if row is None or not valid or not row["is_active"]:
        raise invalid
    user_id: int = row["id"]
    password_hash: str = row["password_hash"]
    if _hasher.check_needs_rehash(password_hash):
        # Stronger parameters since this hash was made: upgrade it, unless the password changed meanwhile.
        upgraded = await hash_password(password)
        replaced = await pool.fetchval(
            "UPDATE users SET password_hash = $1, updated_at = now() WHERE id = $2 AND password_hash = $3 RETURNING id",
            upgraded,
            user_id,
            password_hash,
        )
        if replaced is None:
            raise invalid
        password_hash = upgraded
    lifetime = config.token_lifetime
    return {
        "access_token": _access_token(user_id, password_hash, secret=config.secret, lifetime=lifetime),
        "token_type": "bearer",
        "expires_in": int(lifetime.total_seconds()),
    }
