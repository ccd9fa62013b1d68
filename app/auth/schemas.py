from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from app.text import Text


class LoginForm(BaseModel):
    """OAuth2's password grant (RFC 6749, section 4.3.2), as a form: the email as `username`.

    Written out rather than FastAPI's OAuth2PasswordRequestForm so that both fields obey the text
    rule every other input does (a NUL in a login is a 422 on every backend, as elsewhere).
    """

    username: Text = Field(description="The account's email.")
    password: Text
    grant_type: Literal["password"] | None = None
    scope: str = Field(default="", description="Ignored: a token carries no scopes.")


class Token(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 -- the OAuth2 token type, not a secret
    expires_in: int
