"""Pagination shared by the list endpoints: offset parameters, signed keyset cursors, the envelope.

Offset pages (`skip`, `limit`) are what people expect. Cursor pages continue strictly after the
last row of the previous page in the same ordering (`app.keyset`), so a walk sees each row once
even while rows are inserted, and page 25,000 costs what page 1 costs.

`total` is counted only when the query asks for it (`include=total`), in either mode. Counting
means visiting every matching row: over a million posts that is tens of milliseconds, a hundred
times the cost of the page itself, paid on every page by clients that mostly never read it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, Field

from app.errors import InvalidValue
from app.keyset import Position
from app.text import Text

MAX_LIMIT = 100
# Far beyond any real page; keeps OFFSET inside the range every database accepts.
MAX_SKIP = 2**31 - 1
# A title cursor carries up to 200 characters of UTF-8 (4 bytes each), base64-encoded.
MAX_CURSOR_LENGTH = 2048

SortOrder = Literal["asc", "desc"]

T = TypeVar("T")
S = TypeVar("S", bound=BaseModel)


class PageParams(BaseModel):
    skip: int = Field(default=0, ge=0, le=MAX_SKIP, description="Rows to skip.")
    limit: int = Field(default=10, ge=1, le=MAX_LIMIT, description="Page size, 1-100.")


TOTAL_DESCRIPTION = "`total`: count all matching rows (costs a scan of them); without it `total` is null."


class CursorPageParams(PageParams):
    cursor: Text | None = Field(
        default=None,
        max_length=MAX_CURSOR_LENGTH,
        description="The `next_cursor` of the previous page: continue right after it. Not combined with `skip`.",
    )
    include: list[Literal["total"]] = Field(default_factory=list, description=TOTAL_DESCRIPTION)

    @property
    def with_total(self) -> bool:
        return "total" in self.include


TOTAL_FIELD_DESCRIPTION = "All matching rows, with `include=total`; otherwise null (counting costs a scan)."


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int | None = Field(description=TOTAL_FIELD_DESCRIPTION)
    skip: int
    limit: int


class CursorPage(BaseModel, Generic[T]):
    items: list[T]
    total: int | None = Field(description=TOTAL_FIELD_DESCRIPTION)
    skip: int
    limit: int
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


@dataclass(frozen=True, slots=True)
class Slice(Generic[T]):
    """What a service returns for one page: the rows, the total (when asked for) and the next cursor."""

    items: Sequence[T]
    total: int | None
    next_cursor: str | None

    def to_page(self, schema: type[S], params: PageParams) -> CursorPage[S]:
        # The items are `schema` instances already, validated as the service built them: the
        # envelope is only put around them.
        return CursorPage[schema].model_construct(  # type: ignore[valid-type]
            items=list(self.items),
            total=self.total,
            skip=params.skip,
            limit=params.limit,
            next_cursor=self.next_cursor,
        )


class InvalidCursor(ValueError):
    pass


# How each kind of sort value travels inside a cursor, and comes back.
_ENCODE: dict[type, Callable[[Any], Any]] = {datetime: datetime.isoformat, int: int, str: str}
_DECODE: dict[str, Callable[[Any], Any]] = {"datetime": datetime.fromisoformat, "int": int, "str": str}


def _key(secret: str) -> bytes:
    # A key of its own, derived from the app's secret: a cursor can never pass for a token.
    return hashlib.sha256(b"pagination-cursor:" + secret.encode()).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode_cursor(position: Position, *, scope: str, secret: str) -> str:
    """An opaque, signed cursor. `scope` names the ordering and filters it is valid for."""
    kind = type(position.value)
    payload = {"s": scope, "k": kind.__name__, "v": _ENCODE[kind](position.value), "i": position.id}
    body = _b64(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode())
    signature = _b64(hmac.new(_key(secret), body.encode(), hashlib.sha256).digest()[:16])
    return f"{body}.{signature}"


def decode_cursor(cursor: str, *, scope: str, secret: str) -> Position:
    """The position a cursor stands for; InvalidCursor when it is malformed, forged or foreign."""
    body, _, signature = cursor.partition(".")
    expected = _b64(hmac.new(_key(secret), body.encode(), hashlib.sha256).digest()[:16])
    # Compared as bytes: compare_digest refuses str with non-ASCII characters (a TypeError, a 500).
    if not hmac.compare_digest(signature.encode(), expected.encode()):
        raise InvalidCursor("cursor is malformed or was not issued by this server")
    try:
        payload = json.loads(_unb64(body))
        position = Position(_DECODE[payload["k"]](payload["v"]), int(payload["i"]))
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise InvalidCursor("cursor is malformed") from exc
    if payload.get("s") != scope:
        raise InvalidCursor("cursor belongs to another ordering or filter; start again without it")
    return position


def start_position(params: CursorPageParams, *, scope: str, secret: str) -> Position | None:
    """Where a cursor page starts; None for an offset page. A bad cursor is a 422."""
    if params.cursor is None:
        return None
    if params.skip:
        raise InvalidValue("use either skip or cursor, not both")
    try:
        return decode_cursor(params.cursor, scope=scope, secret=secret)
    except InvalidCursor as exc:
        raise InvalidValue(str(exc)) from None


def next_cursor(last: Position | None, *, scope: str, secret: str) -> str | None:
    """The cursor after `last`, the final row of a page that has more after it."""
    return None if last is None else encode_cursor(last, scope=scope, secret=secret)
