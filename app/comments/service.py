"""Comment rules. Never commits."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.comments import repository
from app.comments.errors import CommentNotFound, MayNotDeleteComment, NotCommentAuthor
from app.comments.schemas import COMMENTS, CommentCreate, CommentRead, CommentUpdate
from app.database import Connection
from app.errors import InvalidValue
from app.keyset import Position
from app.models import Comment
from app.pagination import CursorPageParams, Slice, next_cursor, start_position
from app.posts import service as posts
from app.viewer import Viewer, may_manage


async def add_comment(session: AsyncSession, post_id: int, data: CommentCreate, *, author: Viewer) -> CommentRead:
    comment = await repository.add(session, Comment(post_id=post_id, author_id=author.id, body=data.body))
    return CommentRead.from_row(comment, author_name=author.name)


async def update_comment(session: AsyncSession, comment_id: int, data: CommentUpdate, *, viewer: Viewer) -> Comment:
    comment = await repository.get(session, comment_id)
    if comment is None:
        raise CommentNotFound()
    if not may_manage(viewer, comment.author_id):
        raise NotCommentAuthor()
    comment.body = data.body
    await repository.flush(session)
    return comment


async def delete_comment(session: AsyncSession, comment_id: int, *, viewer: Viewer) -> None:
    """The comment's author, the author of the post it is on, and admins may delete it."""
    authors = await repository.get_authors(session, comment_id)
    if authors is None:
        raise CommentNotFound()
    if not any(may_manage(viewer, author_id) for author_id in authors):
        raise MayNotDeleteComment()
    if not await repository.delete_by_id(session, comment_id):  # deleted by someone else meanwhile
        raise CommentNotFound()


async def list_comments(
    connection: Connection, post_id: int, params: CursorPageParams, *, secret: str
) -> Slice[CommentRead]:
    scope = f"comments:{post_id}"
    try:
        start_after = start_position(params, scope=scope, secret=secret)
    except InvalidValue:
        await posts.ensure_exists(connection, post_id)  # a missing post is a 404, whatever the cursor
        raise
    comments, has_more = await repository.page(
        connection, post_id=post_id, skip=params.skip, limit=params.limit, start_after=start_after
    )
    if not comments:
        # Comments prove their post exists: only an empty page needs to ask (one statement, not
        # two, for nearly every request).
        await posts.ensure_exists(connection, post_id)
    total = await repository.count(connection, post_id) if params.with_total else None
    last = Position(comments[-1]["created_at"], comments[-1]["id"]) if has_more else None
    return Slice(COMMENTS.validate_python(comments), total, next_cursor(last, scope=scope, secret=secret))
