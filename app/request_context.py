"""What became of each request: its id on the response, its access-log line, its metrics.

`RequestContext` is the outermost middleware. It gives every request an id (the client's own
`X-Request-ID` when it is a sane one), keeps it in a context variable for every line logged
while serving it, returns it on the response, and when the response is done writes one access
line and counts the request by its route template -- never the raw path, which a client could
make unique per request. Pure ASGI: `BaseHTTPMiddleware` costs a task and a stream per request.
"""

from __future__ import annotations

import logging
import time
from ipaddress import IPv4Network, IPv6Network
from typing import Any

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.client_address import UNKNOWN, resolve
from app.logs import emit_fields
from app.metrics import METRICS_PATH, UNMATCHED_ROUTE, Metrics
from app.request_id import REQUEST_ID, REQUEST_ID_HEADER, request_id_from

_HEADER = REQUEST_ID_HEADER.lower().encode()
access_logger = logging.getLogger("app.access")


def _quiet(route: str) -> bool:
    """Probes and scrapes come every few seconds from machines: DEBUG, not INFO."""
    return route == METRICS_PATH or route.startswith("/health")


class RequestContext:
    def __init__(
        self,
        app: ASGIApp,
        *,
        routes: list[BaseRoute],
        metrics: Metrics | None,
        trusted_proxies: tuple[IPv4Network | IPv6Network, ...],
    ) -> None:
        self.app, self.routes, self.metrics, self.trusted_proxies = app, routes, metrics, trusted_proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = request_id_from(scope["headers"])
        token = REQUEST_ID.set(request_id)
        header = (_HEADER, request_id.encode())
        status = 500  # what the server answers when the app fails before it starts a response

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            try:
                self._done(scope, status, time.perf_counter() - started)
            finally:
                REQUEST_ID.reset(token)

    def _done(self, scope: Scope, status: int, seconds: float) -> None:
        route = self._route(scope)
        method: str = scope["method"]
        if self.metrics is not None:
            self.metrics.observe_request(method, route, status, seconds)
        level = logging.DEBUG if _quiet(route) else logging.INFO
        if access_logger.isEnabledFor(level):
            fields: dict[str, Any] = {
                "method": method,
                "route": route,
                "status": status,
                # To the hundredth of a millisecond; round(x, 2) costs several times as much.
                "duration_ms": int(seconds * 100_000 + 0.5) / 100,
                "client": self._client(scope),
            }
            emit_fields(access_logger, level, "request", fields)

    def _route(self, scope: Scope) -> str:
        route: Any = scope.get("route")
        if route is None:
            # Answered before routing (an oversized body) or by no route at all (404): the
            # template of the route it was meant for, if any is.
            for candidate in self.routes:
                match, _ = candidate.matches(scope)
                if match != Match.NONE:
                    route = candidate
                    break
        path = getattr(route, "path", None)
        return path if isinstance(path, str) else UNMATCHED_ROUTE

    def _client(self, scope: Scope) -> str:
        client = scope.get("client")
        peer = client[0] if client else None
        if not self.trusted_proxies:
            return peer or UNKNOWN
        forwarded = [value.decode("latin-1") for name, value in scope["headers"] if name == b"x-forwarded-for"]
        return resolve(peer, forwarded, self.trusted_proxies)
