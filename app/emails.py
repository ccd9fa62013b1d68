"""Email addresses as the app stores them: validated, normalised, lower-case.

Shared by registration (users) and login (auth), which must agree on it to the letter.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, EmailStr, Field, TypeAdapter, ValidationError

from app.models.user import EMAIL_MAX_LENGTH
from app.text import CLEAN

# Stored lower-case: one address is one account, whatever letter case it is typed in.
Email = Annotated[EmailStr, CLEAN, Field(max_length=EMAIL_MAX_LENGTH), AfterValidator(str.lower)]
_email_adapter: TypeAdapter[str] = TypeAdapter(Email)


def normalize_email(value: str) -> str:
    """An address as registration stores it (IDNA and Unicode forms unified, lower-case).

    Something that is not an address at all comes back lower-cased: it matches no account.
    """
    try:
        return _email_adapter.validate_python(value.strip())
    except ValidationError:
        return value.strip().lower()
