"""MAX_BODY_BYTES, enforced before anything else looks at the request.

A body that declares its size (Content-Length) over the limit is answered 413 at once, before
routing, authentication or a single byte of it is read. A body that does not (chunked) is
counted as it arrives and cut off with a 413 as soon as it passes the limit. Either way one
request cannot make the server hold more than the limit of its body.

Hand-written rather than FastAPI's `max_body_size`: that one sits outside the app's middleware
and answers plain text, where every error of this API is JSON with a `code`.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(HTTPException):
    """Raised from `receive` while the body is read: the app's handler for HTTP errors answers it."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, detail=f"Content Too Large: the request body may be at most {limit} bytes")


class BodyLimit:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.limit = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send)
            return

        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, watched_send)
        except BodyTooLarge:
            # Raised where no handler saw it (a middleware reading the body); answered here if
            # nothing was sent yet, else the server closes the connection.
            if started:
                raise
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        error = BodyTooLarge(self.limit)
        # Connection: close -- the rest of the body is never read, so the connection cannot
        # carry another request.
        response = JSONResponse(
            {"detail": error.detail, "code": "body_too_large"}, status_code=413, headers={"Connection": "close"}
        )
        await response(scope, receive, send)
