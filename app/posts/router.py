from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from app.auth.dependencies import CurrentUser
from app.database import ConnectionDep, HandlesRoute, SessionDep
from app.dependencies import SettingsDep
from app.errors import error_responses
from app.pagination import CursorPage
from app.params import PostId
from app.posts import service
from app.posts.schemas import PostCreate, PostListParams, PostRead, PostUpdate, PostViews
from app.schemas import Deleted, ModelResponse

router = APIRouter(prefix="/posts", tags=["posts"], route_class=HandlesRoute)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=PostRead, responses=error_responses(401, 503))
async def create_post(data: PostCreate, connection: ConnectionDep, author: CurrentUser) -> ModelResponse:
    """Write a post as the caller."""
    post = await service.create_post(connection, data, author=author)
    return ModelResponse(post, status.HTTP_201_CREATED, {"Location": f"/posts/{post.id}"})


@router.get("", response_model=CursorPage[PostRead], responses=error_responses(503))
async def list_posts(
    params: Annotated[PostListParams, Query()], connection: ConnectionDep, settings: SettingsDep
) -> ModelResponse:
    """List posts by offset (`skip`) or by cursor (`cursor`); `total` with `include=total`."""
    result = await service.list_posts(connection, params, author_id=params.author_id, secret=settings.jwt_secret)
    return ModelResponse(result.to_page(PostRead, params))


@router.get("/{post_id}", response_model=PostRead, responses=error_responses(404, 503))
async def read_post(post_id: PostId, connection: ConnectionDep) -> ModelResponse:
    """A post with its author."""
    return ModelResponse(await service.read_post(connection, post_id))


@router.patch("/{post_id}", response_model=PostRead, responses=error_responses(401, 403, 404, 503))
async def update_post(post_id: PostId, data: PostUpdate, session: SessionDep, viewer: CurrentUser) -> PostRead:
    """Edit a post (its author or an admin)."""
    return PostRead.model_validate(await service.update_post(session, post_id, data, viewer=viewer))


@router.delete("/{post_id}", response_model=Deleted, responses=error_responses(401, 403, 404, 503))
async def delete_post(post_id: PostId, session: SessionDep, viewer: CurrentUser) -> Deleted:
    """Delete a post and its comments (its author or an admin)."""
    await service.delete_post(session, post_id, viewer=viewer)
    return Deleted(deleted=post_id)


@router.post("/{post_id}/views", response_model=PostViews, responses=error_responses(404, 503))
async def add_view(post_id: PostId, connection: ConnectionDep) -> ModelResponse:
    """Count one view; exact under any number of concurrent calls."""
    return ModelResponse(PostViews(id=post_id, views=await service.add_view(connection, post_id)))
