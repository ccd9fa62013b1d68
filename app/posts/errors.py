from __future__ import annotations

from app.errors import NotFound, NotPermitted


class PostNotFound(NotFound):
    detail = "Post not found"


class NotPostAuthor(NotPermitted):
    detail = "Only the post's author or an admin may do this"
