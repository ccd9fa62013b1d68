from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, StrictBool, StringConstraints

from app.emails import Email
from app.models.user import NAME_MAX_LENGTH
from app.pagination import TOTAL_DESCRIPTION, PageParams, SortOrder
from app.schemas import Omittable, PostSummary
from app.text import CLEAN, DOCUMENT_NOT_BLANK, DOCUMENT_TEXT_RULE, Text

BIO_MAX_LENGTH = 5000

# email-validator refuses an address over 254 characters (RFC 5321's limit on a path); the column
# holds 255. The schema documents the limit the API applies.
ADDRESS_MAX_LENGTH = 254
Address = Annotated[Email, Field(max_length=ADDRESS_MAX_LENGTH), DOCUMENT_TEXT_RULE]

Name = Annotated[
    # CLEAN after the constraints still runs first (a before-validator wraps what precedes it),
    # and this way round pydantic strips before it checks the length: on `Text`, "   " passed.
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=NAME_MAX_LENGTH), CLEAN, DOCUMENT_NOT_BLANK
]
Password = Annotated[SecretStr, CLEAN, Field(min_length=8, max_length=128), DOCUMENT_TEXT_RULE]
Bio = Annotated[Text, Field(max_length=BIO_MAX_LENGTH)]

# A domain as an email address ends: dot-separated labels of letters, digits and inner hyphens, in
# any letter case, with or without the `@`. Stated as the pattern the schema documents, and checked
# by it alone, so a client (or a fuzzer) reading the schema knows exactly what is accepted.
DOMAIN_PATTERN = r"^@?[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$"
# The longest domain name, plus the optional `@`.
DOMAIN_MAX_LENGTH = 253 + 1


def _domain(value: str) -> str:
    return value.lower().removeprefix("@")


# CLEAN after the constraints still runs before them (a before-validator wraps what precedes it),
# and this way round the pattern reaches the JSON schema: on `Text` it would be checked by a
# chained step that the schema does not show.
Domain = Annotated[
    str,
    StringConstraints(pattern=DOMAIN_PATTERN, max_length=DOMAIN_MAX_LENGTH),
    CLEAN,
    AfterValidator(_domain),
    Field(description="A domain, e.g. `example.com` (or `@example.com`), in any letter case."),
]


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Address
    name: Name
    password: Password
    bio: Bio | None = None


class UserUpdate(BaseModel):
    """Only the fields sent are changed; `is_active` and `is_admin` are for admins."""

    model_config = ConfigDict(extra="forbid")

    email: Omittable[Address] = None
    name: Omittable[Name] = None
    password: Omittable[Password] = None
    # bio alone may be cleared with null.
    bio: Bio | None = None
    # Strict: JSON has booleans, and `0` or `"yes"` is not one (the schema says boolean).
    is_active: Omittable[StrictBool] = None
    is_admin: Omittable[StrictBool] = None


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
