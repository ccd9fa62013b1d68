from __future__ import annotations

from app.errors import Conflict, NotFound


class UserNotFound(NotFound):
    detail = "User not found"


class EmailTaken(Conflict):
    code = "email_taken"
    detail = "A user with this email already exists"
