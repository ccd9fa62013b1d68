"""How the service logs: one handler on the root logger, lines as JSON objects or readable text.

`create_app()` configures it (and so does the CLI, for its own process), so `python -m app serve`,
plain `uvicorn app.main:app` and an embedding host log alike. Everything goes through the standard
library's `logging`: the app, uvicorn, SQLAlchemy and `limits` all log there already, and one
formatter that reads the request id from a context variable puts it on all their lines; a
structured-logging library would need a bridge for those and add nothing the app uses.

A line is an event with fields: the message is short and fixed, the variable parts are `extra=`
fields, which both formats show (JSON as keys, console as `key=value`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import time
from collections.abc import Callable
from typing import Any, Literal, TextIO, cast

import orjson

from app.request_id import REQUEST_ID, current_request_id

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


def _with_request_id(factory: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    """Records made while a request is served carry its id as a field, for every handler alike
    (ours, a test's, an embedding host's) -- read as the record is made, in the request's context."""

    def make_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        if (request_id := current_request_id()) is not None:
            record.request_id = request_id
        return record

    make_record.adds_request_id = True  # type: ignore[attr-defined]
    return make_record


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


# Lines written directly (`emit_fields`) wait for the end of the event loop's turn, then go out
# in one write: a write system call per request cost as much as rendering the line. At most
# this many wait; a crash loses at most one turn's lines.
_MAX_PENDING = 256


class StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever `sys.stderr` is at the time, as logging's own last resort does: a test
    runner that swaps it per test must not leave the handler writing to a closed stream."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self._pending: list[str] = []
        self._drain_loop: asyncio.AbstractEventLoop | None = None

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass

    def write_soon(self, line: str) -> None:
        """Write `line` at the end of this turn of the running event loop (at once outside one)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        self._pending.append(line)
        if loop is None or len(self._pending) >= _MAX_PENDING:
            self.drain()
        elif self._drain_loop is not loop:
            # Scheduled once per turn; a second loop (another thread's) schedules its own drain.
            self._drain_loop = loop
            loop.call_soon(self.drain)

    def drain(self) -> None:
        self._drain_loop = None
        if not self._pending:
            return
        with self.lock or contextlib.nullcontext():
            lines, self._pending = self._pending, []
            stream = self.stream
            stream.write("".join(lines))
            stream.flush()

    def emit(self, record: logging.LogRecord) -> None:
        self.drain()  # lines keep their order
        super().emit(record)

    def flush(self) -> None:
        # logging.shutdown() flushes every handler at exit: the turn's last lines go out too.
        self.drain()
        super().flush()


def emit_fields(logger: logging.Logger, level: int, message: str, fields: dict[str, Any]) -> None:
    """`logger.log(level, message, extra=fields)`, for a line written on every request, once the
    caller has seen `logger.isEnabledFor(level)`.

    When this module's handler is the only place the line would go -- no other handler, no
    filter anywhere on its way -- it is rendered and handed to it directly, to be written with
    the loop turn's other lines: no LogRecord, no walk up the stack, no handler chain, no write
    of its own (BENCHMARKS.md, "Cost of the operations layer"). Anyone else listening (a test,
    an embedding host's handler) gets a real record.
    """
    handler = _sole_handler(logger, level)
    if handler is None:
        logger.handle(logger.makeRecord(logger.name, level, __file__, 0, message, (), None, extra=fields))
        return
    formatter = cast(LineFormatter, handler.formatter)  # checked by _sole_handler
    name, request_id = _LEVEL_NAMES[level], REQUEST_ID.get()
    line = formatter.render(
        time.time(), name, logger.name, message, request_id=request_id, fields=fields, exception=None
    )
    handler.write_soon(line + "\n")


_LEVEL_NAMES = {number: logging.getLevelName(number) for number in (logging.DEBUG, logging.INFO, logging.WARNING)}


def _sole_handler(logger: logging.Logger, level: int) -> StderrHandler | None:
    if logger.filters or logger.disabled or level not in _LEVEL_NAMES:
        return None
    found: StderrHandler | None = None
    current: logging.Logger | None = logger
    while current is not None:
        if handlers := current.handlers:
            if found is not None or len(handlers) > 1:
                return None
            handler = handlers[0]
            if type(handler) is not StderrHandler or handler.filters or handler.terminator != "\n":
                return None
            found = handler
        current = current.parent if current.propagate else None
    if found is None or level < found.level or not isinstance(found.formatter, LineFormatter):
        return None
    return found


# uvicorn's own loggers: their lines go through the root handler like everyone's. Its access log
# is off: the app writes one line per request itself, with the route and the request id.
_SERVER_LOGGERS = ("uvicorn", "uvicorn.error")
_SERVER_ACCESS_LOGGER = "uvicorn.access"
# Chatty at INFO about what the app logs itself (the migrations it applied): heard at DEBUG only.
_CHATTY_LOGGERS = ("alembic",)
# Log every statement with its parameters (password hashes, emails) at DEBUG: never heard.
_INDISCREET_LOGGERS = ("aiosqlite",)


def configure_logging(*, level: str, renderer: Literal["console", "json"]) -> None:
    """Install the one handler (replacing one an earlier call installed; leaving anyone else's)."""
    if not getattr(logging.getLogRecordFactory(), "adds_request_id", False):
        logging.setLogRecordFactory(_with_request_id(logging.getLogRecordFactory()))
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, StderrHandler)]:
        root.removeHandler(handler)
        handler.flush()
    handler = StderrHandler()
    colour = renderer == "console" and sys.stderr.isatty()
    handler.setFormatter(JsonFormatter() if renderer == "json" else ConsoleFormatter(colour=colour))
    root.addHandler(handler)
    root.setLevel(level)
    for name in _SERVER_LOGGERS:
        server_logger = logging.getLogger(name)
        server_logger.handlers.clear()
        server_logger.propagate = True
        server_logger.setLevel(logging.NOTSET)
    for name in _CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if root.level <= logging.DEBUG else logging.WARNING)
    for name in _INDISCREET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    # A library's warning is a line in the same format, not raw text between the JSON objects.
    logging.captureWarnings(capture=True)
    access = logging.getLogger(_SERVER_ACCESS_LOGGER)
    access.handlers.clear()
    access.propagate = False
    # Without a handler of its own (nor one to propagate to), uvicorn writes no access line at all.
    access.setLevel(logging.WARNING)
