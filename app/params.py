"""Path parameter types shared by the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

# Ids are 32-bit on every backend; a larger number is a 422 here instead of a database error.
MAX_ID = 2**31 - 1

UserId = Annotated[int, Path(ge=1, le=MAX_ID, description="A user's id.")]
PostId = Annotated[int, Path(ge=1, le=MAX_ID, description="A post's id.")]
CommentId = Annotated[int, Path(ge=1, le=MAX_ID, description="A comment's id.")]
