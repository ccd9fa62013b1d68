"""What the admin lists and what it may change: users, posts, comments.

Only fields whose API rules a form can hold to are editable. A user's email (normalised, unique),
password (hashed, revokes tokens) and slug (kept for links, never set by hand) are changed through
the API or not at all; users are neither created here (registration allocates the slug, hashes the
password) nor deleted (that takes all their posts and comments with it: deactivate instead, or use
`DELETE /users/{id}`). The password hash is in no list, page, form or export.
"""

from __future__ import annotations

from typing import Any

from sqladmin import ModelView
from sqladmin.authentication import get_current_user_id
from starlette.requests import Request

from app.admin.rules import RuleViolation, api_form_args, checked
from app.comments.schemas import CommentUpdate
from app.models import Comment, Post, User
from app.posts.schemas import PostUpdate
from app.users.schemas import UserUpdate

# An export is built in memory from every row it holds: enough for a report, not a backup.
EXPORT_MAX_ROWS = 10_000

_USER_EDITABLE = ("name", "bio")
_POST_EDITABLE = ("title", "content")
_COMMENT_EDITABLE = ("body",)


class UserAdmin(ModelView, model=User):
    name = "User"
    name_plural = "Users"
    icon = "fa-solid fa-user"
    can_create = False
    can_delete = False
    export_max_rows = EXPORT_MAX_ROWS

    column_list = [
        User.id,
        User.name,
        User.email,
        User.slug,
        User.is_active,
        User.is_admin,
        User.created_at,
    ]
    column_details_list = [
        User.id,
        User.name,
        User.email,
        User.slug,
        User.bio,
        User.is_active,
        User.is_admin,
        User.created_at,
        User.updated_at,
    ]
    column_export_list = column_details_list
    column_searchable_list = [User.name, User.email]
    column_sortable_list = [User.id, User.name, User.email, User.created_at]
    column_default_sort = [(User.id, True)]
    form_columns = [User.name, User.bio, User.is_active, User.is_admin]
    form_args = api_form_args(UserUpdate, *_USER_EDITABLE)

    async def on_model_change(self, data: dict[str, Any], model: Any, is_created: bool, request: Request) -> None:
        # The admin editing is always a signed-in admin: locking themselves out here would leave
        # no one to undo it from the UI (the API, or ADMIN_EMAIL at startup, still can).
        if model.id == get_current_user_id(request) and not (data.get("is_active") and data.get("is_admin")):
            raise RuleViolation("You cannot deactivate or demote your own account")
        data.update(checked(UserUpdate, data, _USER_EDITABLE))


class PostAdmin(ModelView, model=Post):
    name = "Post"
    name_plural = "Posts"
    icon = "fa-solid fa-file-lines"
    can_create = False
    export_max_rows = EXPORT_MAX_ROWS

    column_list = [Post.id, Post.title, Post.author_id, Post.views, Post.created_at]
    column_details_list = [
        Post.id,
        Post.title,
        Post.content,
        Post.author_id,
        Post.views,
        Post.created_at,
        Post.updated_at,
    ]
    column_export_list = column_details_list
    column_searchable_list = [Post.title]
    column_sortable_list = [Post.id, Post.title, Post.views, Post.created_at]
    column_default_sort = [(Post.id, True)]
    form_columns = [Post.title, Post.content]
    form_args = api_form_args(PostUpdate, *_POST_EDITABLE)

    async def on_model_change(self, data: dict[str, Any], model: Any, is_created: bool, request: Request) -> None:
        data.update(checked(PostUpdate, data, _POST_EDITABLE))


class CommentAdmin(ModelView, model=Comment):
    name = "Comment"
    name_plural = "Comments"
    icon = "fa-solid fa-comment"
    can_create = False
    export_max_rows = EXPORT_MAX_ROWS

    column_list = [Comment.id, Comment.post_id, Comment.author_id, Comment.body, Comment.created_at]
    column_details_list = [
        Comment.id,
        Comment.post_id,
        Comment.author_id,
        Comment.body,
        Comment.created_at,
        Comment.updated_at,
    ]
    column_export_list = column_details_list
    column_searchable_list = [Comment.body]
    column_sortable_list = [Comment.id, Comment.post_id, Comment.created_at]
    column_default_sort = [(Comment.id, True)]
    form_columns = [Comment.body]
    form_args = api_form_args(CommentUpdate, *_COMMENT_EDITABLE)

    async def on_model_change(self, data: dict[str, Any], model: Any, is_created: bool, request: Request) -> None:
        data.update(checked(CommentUpdate, data, _COMMENT_EDITABLE))


VIEWS: tuple[type[ModelView], ...] = (UserAdmin, PostAdmin, CommentAdmin)
