"""Repeated warnings collapsed into one line per interval (outages, failed rollbacks)."""

from __future__ import annotations

import asyncio
import contextvars
import logging
from typing import Any


class BoundedLog:
    """At most one line per key and interval: the first at once, then a count of what followed.

    An outage fails every request the same way; 5,000 lines saying so bury everything else and
    cost the service while it is struggling. The count comes from a timer, so the last interval
    of an outage is reported too.
    """

    def __init__(self, logger: logging.Logger, *, interval: float = 10.0) -> None:
        self.logger, self.interval = logger, interval
        self._suppressed: dict[str, int] = {}

    def warning(self, key: str, message: str, **fields: Any) -> None:
        if key in self._suppressed:
            self._suppressed[key] += 1
            return
        self.logger.warning(message, extra=fields)
        self._suppressed[key] = 0
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop, no timer: the next occurrence is logged again
            del self._suppressed[key]
            return
        # A fresh context: the count belongs to no single request.
        loop.call_later(self.interval, self._report, key, message, fields, context=contextvars.Context())

    def _report(self, key: str, message: str, fields: dict[str, Any]) -> None:
        count = self._suppressed.pop(key, 0)
        if count:
            self.logger.warning(
                "%s: %d more in the last %g s", message, count, self.interval, extra={**fields, "repeated": count}
            )
