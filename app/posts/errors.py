from __future__ import annotations

from app.errors import InvalidToken, NotFound, NotPermitted


class PostNotFound(NotFound):
    detail = "Post not found"


class NotPostAuthor(NotPermitted):
    detail = "Only the post's author or an admin may do this"


class AuthorGone(InvalidToken):
    """The account a valid token stands for was deleted between the token check and the write."""
