from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Path, Query, Response, status
from pydantic import BaseModel

from app.auth.dependencies import CurrentUser, OptionalUser
from app.auth.viewer import Viewer
from app.database import DatabaseDep, SessionDep
from app.dependencies import SettingsDep
from app.errors import error_responses
from app.models.user import SLUG_MAX_LENGTH
from app.pagination import CursorPage, Page
from app.params import UserId
from app.posts import service as posts_service
from app.posts.schemas import PostQuery, PostRead
from app.schemas import Deleted, ModelResponse
from app.users import service
from app.users.schemas import (
    RECENT_POSTS,
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

router = APIRouter(prefix="/users", tags=["users"])


M = TypeVar("M", bound=BaseModel)


def _from_row(schema: type[M], row: Any, **extra: Any) -> M:
    """`schema` filled from a database row's same-named columns, without validation: the values are
    our own database's, through typed columns. The fields the schema lacks (the email of a public
    profile) are simply not read."""
    return schema.model_construct(
        **{name: getattr(row, name) for name in schema.model_fields if name not in extra}, **extra
    )


def present(user: Any, viewer: Viewer | None) -> UserPrivate | UserPublic:
    """The profile as `viewer` may see it: the email only for its owner and admins."""
    return _from_row(UserPrivate if service.can_manage(viewer, user.id) else UserPublic, user)


def present_with_posts(user: Any, viewer: Viewer | None, posts: Sequence[Any]) -> UserListItem:
    schema = UserPrivateWithPosts if service.can_manage(viewer, user.id) else UserPublicWithPosts
    # One validation per user, in pydantic's Rust core, posts included: cheaper than building the
    # six models one by one in Python.
    return schema.model_validate({**user._mapping, "posts": [post._mapping for post in posts]})


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=UserPrivate,
    responses=error_responses(409, 503),
)
async def create_user(data: UserCreate, session: SessionDep, response: Response) -> UserPrivate:
    """Register an account; the response is the new user's own profile."""
    user = await service.register(session, data)
    response.headers["Location"] = f"/users/{user.id}"
    return UserPrivate.model_validate(user)


@router.get("", response_model=Page[UserListItem], responses=error_responses(401, 403, 503))
async def list_users(
    params: Annotated[UserListParams, Query()], database: DatabaseDep, viewer: OptionalUser
) -> ModelResponse:
    """List users; deactivated users and the email-domain filter are for admins."""
    recent: dict[int, list[Any]] = {}
    async with database.reading() as connection:
        users, total = await service.list_users(connection, params, viewer=viewer)
        if "posts" in params.include:
            # One query for the whole page, whatever its size.
            ids = [user.id for user in users]
            recent = await posts_service.recent_posts(connection, ids, per_author=RECENT_POSTS)
    items: list[UserListItem]
    if "posts" in params.include:
        items = [present_with_posts(user, viewer, recent.get(user.id, [])) for user in users]
    else:
        items = [present(user, viewer) for user in users]
    # The items are built already; validating the envelope would check each against all four
    # members of the union again.
    page = Page[UserListItem].model_construct(items=items, total=total, skip=params.skip, limit=params.limit)
    return ModelResponse(page)


@router.get("/me", response_model=UserPrivate, responses=error_responses(401, 503))
async def read_current_user(user: CurrentUser) -> UserPrivate:
    """The caller's own profile."""
    return UserPrivate.model_validate(user)


@router.get("/by-slug/{slug}", response_model=UserRead, responses=error_responses(401, 404, 503))
async def read_user_by_slug(
    slug: Annotated[str, Path(max_length=SLUG_MAX_LENGTH)], database: DatabaseDep, viewer: OptionalUser
) -> ModelResponse:
    """A profile by its slug, seen as `GET /users/{id}` shows it."""
    async with database.reading() as connection:
        user = await service.get_visible_by_slug(connection, slug, viewer=viewer)
    return ModelResponse(present(user, viewer))


@router.get("/{user_id}/posts", response_model=CursorPage[PostRead], responses=error_responses(401, 404, 503))
async def list_user_posts(
    user_id: UserId,
    params: Annotated[PostQuery, Query()],
    database: DatabaseDep,
    viewer: OptionalUser,
    settings: SettingsDep,
) -> ModelResponse:
    """One author's posts, paged and ordered like `GET /posts`."""
    async with database.reading() as connection:
        await service.get_visible(connection, user_id, viewer=viewer)
        result = await posts_service.list_posts(connection, params, author_id=user_id, secret=settings.jwt_secret)
    return ModelResponse(result.to_page(PostRead, params))


@router.get("/{user_id}", response_model=UserRead, responses=error_responses(401, 404, 503))
async def read_user(user_id: UserId, database: DatabaseDep, viewer: OptionalUser) -> ModelResponse:
    """A profile; the email is shown to its owner and to admins only."""
    async with database.reading() as connection:
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
