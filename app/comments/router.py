from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from app.auth.dependencies import CurrentUser
from app.comments import service
from app.comments.schemas import CommentCreate, CommentRead, CommentUpdate
from app.database import ConnectionDep, HandlesRoute, SessionDep
from app.dependencies import SettingsDep
from app.errors import error_responses
from app.pagination import CursorPage, CursorPageParams
from app.params import CommentId, PostId
from app.schemas import Deleted, ModelResponse

router = APIRouter(tags=["comments"], route_class=HandlesRoute)


@router.post(
    "/posts/{post_id}/comments",
    status_code=status.HTTP_201_CREATED,
    response_model=CommentRead,
    responses=error_responses(401, 404, 503),
)
async def create_comment(post_id: PostId, data: CommentCreate, session: SessionDep, author: CurrentUser) -> CommentRead:
    """Comment on a post as the caller."""
    return await service.add_comment(session, post_id, data, author=author)


@router.get("/posts/{post_id}/comments", response_model=CursorPage[CommentRead], responses=error_responses(404, 503))
async def list_comments(
    post_id: PostId, params: Annotated[CursorPageParams, Query()], connection: ConnectionDep, settings: SettingsDep
) -> ModelResponse:
    """A post's comments, oldest first; by offset or by cursor like `GET /posts`."""
    result = await service.list_comments(connection, post_id, params, secret=settings.jwt_secret)
    return ModelResponse(result.to_page(CommentRead, params))


@router.patch("/comments/{comment_id}", response_model=CommentRead, responses=error_responses(401, 403, 404, 503))
async def update_comment(
    comment_id: CommentId, data: CommentUpdate, session: SessionDep, viewer: CurrentUser
) -> CommentRead:
    """Edit a comment (its author or an admin)."""
    return CommentRead.model_validate(await service.update_comment(session, comment_id, data, viewer=viewer))


@router.delete("/comments/{comment_id}", response_model=Deleted, responses=error_responses(401, 403, 404, 503))
async def delete_comment(comment_id: CommentId, session: SessionDep, viewer: CurrentUser) -> Deleted:
    """Delete a comment (its author, the post's author, or an admin)."""
    await service.delete_comment(session, comment_id, viewer=viewer)
    return Deleted(deleted=comment_id)
