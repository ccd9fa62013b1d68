"""Every query on `comments`. Receives the session or connection it runs on; never commits."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ForeignKeyConstraint, Integer, Select, Table, bindparam, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import contains_eager
from sqlalchemy.orm.exc import StaleDataError

from app.comments.errors import CommentNotFound
from app.database import Connection
from app.integrity import violates_foreign_key
from app.keyset import Position, after
from app.models import Base, Comment, Post, User
from app.posts.errors import PostNotFound
from app.rows import with_author

_POST_FOREIGN_KEY: ForeignKeyConstraint = next(
    fk for fk in Base.metadata.tables["comments"].foreign_key_constraints if fk.referred_table.name == "posts"
)


def _with_author() -> Any:
    return select(Comment).join(Comment.author).options(contains_eager(Comment.author).load_only(User.id, User.name))


async def get(session: AsyncSession, comment_id: int) -> Comment | None:
    return (await session.scalars(_with_author().where(Comment.id == comment_id))).one_or_none()


async def get_authors(session: AsyncSession, comment_id: int) -> tuple[int, int] | None:
    """(the comment's author, its post's author), or None when the comment does not exist."""
    row = (
        await session.execute(
            select(Comment.author_id, Post.author_id)
            .join(Post, Comment.post_id == Post.id)
            .where(Comment.id == comment_id)
        )
    ).one_or_none()
    return None if row is None else (row[0], row[1])


async def add(session: AsyncSession, comment: Comment) -> Comment:
    """Insert; a post that does not exist (or was deleted meanwhile) is PostNotFound.

    The foreign key decides, not a check beforehand that a concurrent delete could outdate.
    """
    session.add(comment)
    try:
        await session.flush()
    except IntegrityError as exc:
        if violates_foreign_key(exc, _POST_FOREIGN_KEY):
            raise PostNotFound() from None
        raise
    return comment


async def flush(session: AsyncSession) -> None:
    """Write pending changes; a comment deleted meanwhile is CommentNotFound."""
    try:
        await session.flush()
    except StaleDataError:
        raise CommentNotFound() from None


async def delete_by_id(session: AsyncSession, comment_id: int) -> bool:
    result = await session.execute(delete(Comment).where(Comment.id == comment_id))
    return bool(result.rowcount)  # type: ignore[attr-defined]


# Reads: Core statements on the request's autocommit connection, each comment with its author's name.
_comments: Table = Comment.__table__  # type: ignore[assignment]
_users: Table = User.__table__  # type: ignore[assignment]
_WITH_AUTHOR = select(*_comments.c, _users.c.name.label("author_name")).join_from(
    _comments, _users, _comments.c.author_id == _users.c.id
)


def _page(*, after_cursor: bool) -> Select[Any]:
    clauses = [_comments.c.post_id == bindparam("post_id")]
    if after_cursor:
        value = bindparam("cursor_value", type_=_comments.c.created_at.type)
        last_id = bindparam("cursor_id", type_=Integer)
        clauses.append(after(_comments.c.created_at, _comments.c.id, value, last_id, descending=False))
    return (
        _WITH_AUTHOR.where(*clauses)
        .order_by(_comments.c.created_at.asc(), _comments.c.id.asc())
        .offset(bindparam("skip", type_=Integer))
        .limit(bindparam("limit", type_=Integer))
    )


# Built once: only values vary per request.
_FIRST_PAGE, _PAGE_AFTER = _page(after_cursor=False), _page(after_cursor=True)


async def page(
    connection: Connection, *, post_id: int, skip: int, limit: int, start_after: Position | None
) -> tuple[list[dict[str, Any]], bool]:
    """A page of a post's comments with their `author`, oldest first (ties by id), and whether more follow."""
    values: dict[str, Any] = {"post_id": post_id, "skip": skip, "limit": limit + 1}
    if start_after is not None:
        values |= {"cursor_value": start_after.value, "cursor_id": start_after.id}
    statement = _FIRST_PAGE if start_after is None else _PAGE_AFTER
    comments = (await connection.execute(statement, values)).all()
    return with_author(comments[:limit]), len(comments) > limit


_COUNT = select(func.count()).select_from(_comments).where(_comments.c.post_id == bindparam("post_id"))


async def count(connection: Connection, post_id: int) -> int:
    return await connection.scalar(_COUNT, {"post_id": post_id}) or 0
