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
import logging
import sys
import time
from collections.abc import Callable
from typing import Any, Literal, TextIO, cast

from app.log_lines import ConsoleFormatter, JsonFormatter, LineFormatter
from app.request_id import REQUEST_ID, current_request_id


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
