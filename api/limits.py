"""Limits as pure ASGI middleware: the request body size, and the admission of answers.

A declared ``Content-Length`` over the limit is refused before the body is read; a body sent
without one (chunked) is counted while it is read and cut off at the limit. Either way the
client gets a JSON 413 naming the limit, and the application never holds more than the limit
in memory.

``POST /ask`` while the answer queue is full is refused (503 ``busy`` with ``Retry-After``)
before its body is read or validated, so that a crowd retrying at once costs the server next to
nothing; a request let through is admitted again by the queue itself.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from policyqa.api.errors import TrackedSend, error_response
from policyqa.workqueue import WorkQueue

__all__ = ["AdmissionMiddleware", "BodySizeLimitMiddleware"]


class _TooLarge(BaseException):
    """Raised from ``receive`` past the limit. A BaseException, so that no ``except Exception``
    on the way (FastAPI turns body-parsing errors into a 400) swallows it."""


def _human(n: int) -> str:
    for unit, size in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:g} {unit}"
    return f"{n} bytes"


class BodySizeLimitMiddleware:
    """Answer 413 to requests whose body is larger than ``max_bytes``."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413,
            f"the request body is larger than the limit of {_human(self.max_bytes)} "
            f"({self.max_bytes} bytes); send fewer or smaller files",
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > self.max_bytes:
                    await self._refuse(scope, receive, send)
                    return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge
            return message

        tracked = TrackedSend(send)
        try:
            await self.app(scope, counting_receive, tracked)
        except _TooLarge:
            if tracked.started:
                raise
            await self._refuse(scope, receive, send)


class AdmissionMiddleware:
    """Refuse a request to one of ``paths`` at once (before its body is read) when ``queue``
    would refuse it (see the module docstring)."""

    def __init__(self, app: ASGIApp, queue: WorkQueue, paths: tuple[str, ...] = ("/ask",)) -> None:
        self.app = app
        self.queue = queue
        self.paths = frozenset(paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("method") == "POST" and scope.get("path") in self.paths:
            refused = self.queue.refusal()
            if refused is not None:
                response = error_response(
                    503, str(refused), headers={"Retry-After": str(refused.retry_after)}, code="busy"
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
