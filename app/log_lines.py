"""How a log line reads: one JSON object (production) or a readable line (development).

Both formats take a line's parts -- time, level, logger, message, the request id and the event's
own fields -- from a LogRecord (`LineFormatter.format`) or directly (`app.logs.emit_fields`, for
the access line), so the two read alike.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import orjson

# The attributes every LogRecord has; anything else on a record came in through `extra=`.
# (uvicorn adds `color_message`, its own coloured copy of the message.) An `extra=` field named
# like a key every line has is dropped rather than allowed to forge that key.
_RECORD_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
    "timestamp",
    "level",
    "logger",
    "exception",
    "request_id",
}

_COLOURS = {
    "DEBUG": "\x1b[2m",
    "INFO": "\x1b[32m",
    "WARNING": "\x1b[33m",
    "ERROR": "\x1b[31m",
    "CRITICAL": "\x1b[1;31m",
}
_RESET = "\x1b[0m"


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {key: value for key, value in record.__dict__.items() if key not in _RECORD_ATTRIBUTES}


_last_second: tuple[int, str] = (-1, "")


def _utc(created: float) -> str:
    global _last_second  # noqa: PLW0603 -- a one-entry cache: lines come many per second
    whole = int(created)
    if _last_second[0] != whole:
        _last_second = (whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)))
    return f"{_last_second[1]}.{int((created - whole) * 1000):03d}Z"


class LineFormatter(logging.Formatter):
    """A line from its parts, so that a record and an event written directly (`emit_fields`) read alike."""

    def format(self, record: logging.LogRecord) -> str:
        exception = self.formatException(record.exc_info) if record.exc_info else None
        message, fields, request_id = record.getMessage(), _fields(record), getattr(record, "request_id", None)
        return self.render(
            record.created,
            record.levelname,
            record.name,
            message,
            request_id=request_id,
            fields=fields,
            exception=exception,
        )

    def render(
        self,
        created: float,
        level: str,
        logger: str,
        message: str,
        *,
        request_id: str | None,
        fields: dict[str, Any],
        exception: str | None,
    ) -> str:
        raise NotImplementedError


class JsonFormatter(LineFormatter):
    """One JSON object per line: timestamp (ISO 8601, UTC), level, logger, message, request_id, fields.

    orjson writes it (a tenth of `json.dumps`'s time; this runs for every request's access line).
    What orjson refuses -- a lone surrogate, an integer beyond 64 bits -- `json.dumps` writes, with
    ASCII escapes: any text stays on one valid line.
    """

    def render(
        self,
        created: float,
        level: str,
        logger: str,
        message: str,
        *,
        request_id: str | None,
        fields: dict[str, Any],
        exception: str | None,
    ) -> str:
        line = {"timestamp": _utc(created), "level": level, "logger": logger, "message": message}
        if request_id is not None:
            line["request_id"] = request_id
        if fields:
            line.update(fields)
        if exception is not None:
            line["exception"] = exception
        try:
            return orjson.dumps(line, default=str).decode()
        except orjson.JSONEncodeError:
            return json.dumps(line, default=str)


class ConsoleFormatter(LineFormatter):
    """`2026-12-02 17:20:00.123 INFO  app.access  request method=GET ... request_id=...`, coloured on a terminal."""

    def __init__(self, *, colour: bool) -> None:
        super().__init__()
        self.colour = colour

    def render(
        self,
        created: float,
        level: str,
        logger: str,
        message: str,
        *,
        request_id: str | None,
        fields: dict[str, Any],
        exception: str | None,
    ) -> str:
        shown = f"{level:<7}"
        if self.colour:
            shown = f"{_COLOURS.get(level, '')}{shown}{_RESET}"
        stamp = _utc(created).replace("T", " ").removesuffix("Z")
        text = f"{stamp} {shown} {logger}  {message}"
        if fields:
            text += " " + " ".join(f"{key}={value}" for key, value in fields.items())
        if request_id is not None:
            text += f" request_id={request_id}"
        if exception is not None:
            text += "\n" + exception
        return text
