"""The one rule every piece of text from a client obeys: no U+0000, no lone surrogate.

PostgreSQL cannot store U+0000 in a text column at all (the driver raises), while SQLite and
MariaDB store it and hand it back; a lone surrogate (`"\\ud800"` in JSON) is not Unicode and no
driver can encode it. Rejecting both at the edge, for every field and parameter, keeps the
three backends answering the same 422 for the same input. Every text input type is built from
`Text`, which also states the rule in the JSON schema, or (a constrained or non-`str` type)
carries `CLEAN` and a `DOCUMENT_` marker: the rule is written once.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError


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


# The rule as JSON-schema patterns, which the schema cannot infer from a validator: no
# U+0000 (a lone surrogate is not Unicode text, which a JSON-schema string already means); and for
# text whose surrounding whitespace is stripped before its length is checked, at least one
# character that is not whitespace -- Unicode's White_Space, the set pydantic strips.
_WHITE_SPACE = r"\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NO_NUL_PATTERN = r"^[^\x00]*$"
NOT_BLANK_PATTERN = rf"^[^\x00]*[^\x00{_WHITE_SPACE}][^\x00]*$"


class TextRuleSchema:
    """Annotated metadata that documents the text rule on a text type; validation stays CLEAN's."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern

    def __get_pydantic_json_schema__(self, core_schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        schema = handler(core_schema)
        # A pattern of the type's own (a domain's) says more, and excludes U+0000 already.
        handler.resolve_ref_schema(schema).setdefault("pattern", self.pattern)
        return schema


DOCUMENT_TEXT_RULE = TextRuleSchema(NO_NUL_PATTERN)
DOCUMENT_NOT_BLANK = TextRuleSchema(NOT_BLANK_PATTERN)


# Before pydantic's own checks: a constrained string would reject a lone surrogate with a
# message about "raw data", and a validator after it (an email's) could choke on it. For types
# that are not `str` underneath (SecretStr, EmailStr), or constrained ones, add CLEAN and one of
# the DOCUMENT_ markers to their Annotated.
CLEAN = BeforeValidator(clean_text)
Text = Annotated[str, CLEAN, DOCUMENT_TEXT_RULE]
