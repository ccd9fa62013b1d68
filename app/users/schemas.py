from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, StringConstraints

from app.emails import Email
from app.models.user import NAME_MAX_LENGTH
from app.pagination import TOTAL_DESCRIPTION, PageParams, SortOrder
from app.schemas import PostSummary, not_nullable
from app.text import CLEAN, Text

BIO_MAX_LENGTH = 5000

Name = Annotated[Text, StringConstraints(strip_whitespace=True, min_length=1, max_length=NAME_MAX_LENGTH)]
Password = Annotated[SecretStr, CLEAN, Field(min_length=8, max_length=128)]
Bio = Annotated[Text, Field(max_length=BIO_MAX_LENGTH)]

_DOMAIN = re.compile(r"^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*$")


def _domain(value: str) -> str:
    value = value.strip().lower().removeprefix("@")
    if not _DOMAIN.match(value):
        raise ValueError("not a domain name, e.g. example.com")
    return value


Domain = Annotated[Text, AfterValidator(_domain)]


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email
    name: Name
    password: Password
    bio: Bio | None = None


class UserUpdate(BaseModel):
    """Only the fields sent are changed; `is_active` and `is_admin` are for admins."""

    model_config = ConfigDict(extra="forbid")

    email: Email | None = None
    name: Name | None = None
    password: Password | None = None
    bio: Bio | None = None
    is_active: bool | None = None
    is_admin: bool | None = None

    # bio alone may be cleared with null.
    _not_null = not_nullable("email", "name", "password", "is_active", "is_admin")


class UserPublic(BaseModel):
    """A profile as anyone may see it."""

    # Profiles are validated from whole rows, email included: ignoring what is not a field is
    # what keeps the email out of a public profile (the default, stated because it matters).
    model_config = ConfigDict(from_attributes=True, extra="ignore")

    id: int
    name: str
    slug: str = Field(description="The profile's handle (`GET /users/by-slug/{slug}`); kept when the name changes.")
    bio: str | None
    is_active: bool
    is_admin: bool
    created_at: datetime
    updated_at: datetime


class UserPrivate(UserPublic):
    """A profile as its owner or an admin sees it."""

    email: str


UserRead = UserPrivate | UserPublic

RECENT_POSTS = 5


class UserPublicWithPosts(UserPublic):
    posts: list[PostSummary] = Field(description=f"The {RECENT_POSTS} most recent posts, newest first.")


class UserPrivateWithPosts(UserPrivate):
    posts: list[PostSummary] = Field(description=f"The {RECENT_POSTS} most recent posts, newest first.")


# Most specific first: serialisation picks the member whose type the item is.
UserListItem = UserPrivateWithPosts | UserPublicWithPosts | UserPrivate | UserPublic


class UserListParams(PageParams):
    q: Text | None = Field(default=None, max_length=NAME_MAX_LENGTH, description="Case-insensitive part of the name.")
    is_admin: bool | None = None
    is_active: bool = Field(default=True, description="`false` lists deactivated users (admins only).")
    email_domain: list[Domain] = Field(
        default_factory=list, description="Users with an address at any of these domains (admins only)."
    )
    order_by: Literal["id", "created_at", "name"] = "created_at"
    order: SortOrder = Field(default="desc", description="Ties are broken by id in the same direction.")
    include: list[Literal["posts", "total"]] = Field(
        default_factory=list,
        description=f"`posts`: each user with their {RECENT_POSTS} most recent posts. {TOTAL_DESCRIPTION}",
    )

    @property
    def with_total(self) -> bool:
        return "total" in self.include
