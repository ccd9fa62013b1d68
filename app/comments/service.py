"""Comment rules. Never commits."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.comments import repository
from app.comments.errors import CommentNotFound, MayNotDeleteComment, NotCommentAuthor
from app.comments.schemas import CommentCreate, CommentUpdate
from app.models import Comment, User
from app.pagination import CursorPageParams, Position, Slice, next_cursor, start_position
from app.posts import repository as posts
from app.posts.errors import PostNotFound


async def add_comment(session: AsyncSession, post_id: int, data: CommentCreate, *, author: User) -> Comment:
    comment = await repository.add(session, Comment(post_id=post_id, author_id=author.id, body=data.body))
    comment.author = author
    return comment


async def update_comment(session: AsyncSession, comment_id: int, data: CommentUpdate, *, viewer: User) -> Comment:
    comment = await repository.get(session, comment_id)
    if comment is None:
        raise CommentNotFound()
    if not (viewer.is_admin or viewer.id == comment.author_id):
        raise NotCommentAuthor()
    comment.body = data.body
    await repository.flush(session)
    return comment


async def delete_comment(session: AsyncSession, comment_id: int, *, viewer: User) -> None:
    """The comment's author, the author of the post it is on, and admins may delete it."""
    authors = await repository.get_authors(session, comment_id)
    if authors is None:
        raise CommentNotFound()
    if not (viewer.is_admin or viewer.id in authors):
        raise MayNotDeleteComment()
    if not await repository.delete_by_id(session, comment_id):  # deleted by someone else meanwhile
        raise CommentNotFound()


async def list_comments(
    session: AsyncSession, post_id: int, params: CursorPageParams, *, secret: str
) -> Slice[Comment]:
    if not await posts.exists(session, post_id):
        raise PostNotFound()
    scope = f"comments:{post_id}"
    start_after = start_position(params, scope=scope, secret=secret)
    comments, has_more = await repository.page(
        session, post_id=post_id, skip=params.skip, limit=params.limit, start_after=start_after
    )
    total = await repository.count(session, post_id) if params.with_total else None
    last = Position(comments[-1].created_at, comments[-1].id) if has_more else None
    return Slice(comments, total, next_cursor(last, scope=scope, secret=secret))
