from __future__ import annotations

from app.errors import NotFound, NotPermitted


class CommentNotFound(NotFound):
    detail = "Comment not found"


class NotCommentAuthor(NotPermitted):
    detail = "Only the comment's author or an admin may do this"


class MayNotDeleteComment(NotPermitted):
    detail = "Only the comment's author, the post's author or an admin may delete it"
