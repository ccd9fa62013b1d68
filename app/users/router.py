from __future__ import annotations

import functools
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from pydantic import BaseModel

from app.auth.dependencies import CurrentUser, OptionalUser
from app.database import ConnectionDep, HandlesRoute, SessionDep
from app.dependencies import ClientAddressDep, RateLimitsDep, SettingsDep
from app.errors import error_responses
from app.models.user import SLUG_MAX_LENGTH
from app.pagination import CursorPage, Page
from app.params import UserId
from app.posts.schemas import PostQuery, PostRead
from app.read_positions import act_as
from app.schemas import Deleted, ModelResponse
from app.text import Text
from app.users import service
from app.users.schemas import (
    UserCreate,
    UserListItem,
    UserListParams,
    UserPrivate,
    UserPrivateWithPosts,
    UserPublic,
    UserPublicWithPosts,
    UserRead,
    UserUpdate,
)
from app.viewer import Viewer, may_manage

router = APIRouter(prefix="/users", tags=["users"], route_class=HandlesRoute)


def present(user: dict[str, Any], viewer: Viewer | None) -> UserListItem:
    """The profile as `viewer` may see it: the email only for its owner and admins; with the
    user's recent posts when the row brought them (`include=posts`)."""
    if "posts" in user:
        schema: type[UserListItem] = UserPrivateWithPosts if may_manage(viewer, user["id"]) else UserPublicWithPosts
    else:
        schema = UserPrivate if may_manage(viewer, user["id"]) else UserPublic
    return schema.model_validate(user)


@functools.cache
def _page_type(item_type: type[BaseModel] | None) -> type[Page[Any]]:
    # A page whose items are all one type serialises as that type's page: pydantic's serialiser
    # otherwise matches every item against the union's four members (about 2.5 µs an item).
    return Page[item_type] if item_type is not None else Page[UserListItem]  # type: ignore[valid-type]


async def _count_signup(rate_limits: RateLimitsDep, address: ClientAddressDep) -> None:
    # A dependency of the route, so it runs before the body is validated: every attempt counts,
    # a flood of 422s and 409s as much as of new accounts, and a throttled one is never hashed.
    await rate_limits.count_signup(address=address)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=UserPrivate,
    responses=error_responses(409, 429, 503),
    dependencies=[Depends(_count_signup)],
)
async def create_user(data: UserCreate, session: SessionDep, request: Request, response: Response) -> UserPrivate:
    """Register an account (attempts are rate-limited per address); the response is the new user's own profile."""
    user = await service.register(session, data)
    act_as(request, user.id)  # so that the new account's first reads find it, whichever replica serves them
    response.headers["Location"] = f"/users/{user.id}"
    return UserPrivate.model_validate(user)


@router.get("", response_model=Page[UserListItem], responses=error_responses(401, 403, 503))
async def list_users(
    params: Annotated[UserListParams, Query()], connection: ConnectionDep, viewer: OptionalUser
) -> ModelResponse:
    """List users; deactivated users and the email-domain filter are for admins."""
    users, total = await service.list_users(connection, params, viewer=viewer)
    items = [present(user, viewer) for user in users]
    kinds = {type(item) for item in items}
    page_type = _page_type(kinds.pop() if len(kinds) == 1 else None)
    # The items are validated already: the envelope is only put around them.
    return ModelResponse(page_type.model_construct(items=items, total=total, skip=params.skip, limit=params.limit))


@router.get("/me", response_model=UserPrivate, responses=error_responses(401, 503))
async def read_current_user(user: CurrentUser) -> UserPrivate:
    """The caller's own profile."""
    return UserPrivate.model_validate(user)


@router.get("/by-slug/{slug}", response_model=UserRead, responses=error_responses(401, 404, 503))
async def read_user_by_slug(
    slug: Annotated[Text, Path(max_length=SLUG_MAX_LENGTH)], connection: ConnectionDep, viewer: OptionalUser
) -> ModelResponse:
    """A profile by its slug, seen as `GET /users/{id}` shows it."""
    user = await service.get_visible_by_slug(connection, slug, viewer=viewer)
    return ModelResponse(present(user, viewer))


@router.get("/{user_id}/posts", response_model=CursorPage[PostRead], responses=error_responses(401, 404, 503))
async def list_user_posts(
    user_id: UserId,
    params: Annotated[PostQuery, Query()],
    connection: ConnectionDep,
    viewer: OptionalUser,
    settings: SettingsDep,
) -> ModelResponse:
    """One author's posts, paged and ordered like `GET /posts`."""
    result = await service.list_posts_of(connection, user_id, params, viewer=viewer, secret=settings.jwt_secret)
    return ModelResponse(result.to_page(PostRead, params))


@router.get("/{user_id}", response_model=UserRead, responses=error_responses(401, 404, 503))
async def read_user(user_id: UserId, connection: ConnectionDep, viewer: OptionalUser) -> ModelResponse:
    """A profile; the email is shown to its owner and to admins only."""
    user = await service.get_visible(connection, user_id, viewer=viewer)
    return ModelResponse(present(user, viewer))


@router.patch("/{user_id}", response_model=UserPrivate, responses=error_responses(401, 403, 404, 409, 503))
async def update_user(user_id: UserId, data: UserUpdate, session: SessionDep, viewer: CurrentUser) -> UserPrivate:
    """Change an account (its owner or an admin); `is_active` and `is_admin` are for admins."""
    user = await service.update_user(session, user_id, data, viewer=viewer)
    return UserPrivate.model_validate(user)


@router.delete("/{user_id}", response_model=Deleted, responses=error_responses(401, 403, 404, 503))
async def delete_user(user_id: UserId, session: SessionDep, viewer: CurrentUser) -> Deleted:
    """Delete an account (its owner or an admin), with everything it owns."""
    await service.delete_user(session, user_id, viewer=viewer)
    return Deleted(deleted=user_id)
