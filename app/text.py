"""The one rule every piece of text from a client obeys: no U+0000, no lone surrogate.

PostgreSQL cannot store U+0000 in a text column at all (the driver raises), while SQLite and
MariaDB store it and hand it back; a lone surrogate (`"\\ud800"` in JSON) is not Unicode and no
driver can encode it. Rejecting both at the edge, for every field and parameter, keeps the
three backends answering the same 422 for the same input. Every text input type is built from
`Text` (or takes `CLEAN` as its first validator), so the rule is written once.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError


def clean_text(value: object) -> object:
    """The value unchanged, or a validation error when it is text no backend can store alike."""
    if isinstance(value, str):
        if "\x00" in value:
            raise PydanticCustomError("text_nul", "Text may not contain the NUL character (U+0000)")
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise PydanticCustomError(
                    "text_surrogate", "Text may not contain a lone surrogate (it is not valid Unicode)"
                ) from None
    return value


# Before pydantic's own checks: a constrained string would reject a lone surrogate with a
# message about "raw data", and a validator after it (an email's) could choke on it. For types
# that are not `str` underneath (SecretStr, EmailStr), put CLEAN first in their Annotated.
CLEAN = BeforeValidator(clean_text)
Text = Annotated[str, CLEAN]
