"""Errors as JSON: ``{"error": code, "detail": reason}``, never a stack trace.

Domain errors of the service layer are translated here, at the edge: not ready → 503, unknown
document → 404, nothing indexable → 422 with per-file status, index built with other settings
→ 409, too busy → 503 with ``Retry-After``. Anything unexpected is logged with a reference id and
answered with a 500 naming only that id; :class:`CatchAllMiddleware` does the same for what is
not an ``Exception`` (a Rust panic in a tokenizer is a ``BaseException``), so no client ever gets
a plain-text 500 or a dropped connection.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import uuid
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from policyqa.api.schemas import NO_NUL, NOT_BLANK, FileStatusOut
from policyqa.corpus.models import DOC_ID_PATTERN
from policyqa.index.layout import IndexNotFoundError, IndexVersionError
from policyqa.service import (
    DocumentNotFoundError,
    NothingIndexedError,
    ServiceBusyError,
    ServiceNotReadyError,
)

__all__ = [
    "ApiError",
    "CatchAllMiddleware",
    "TrackedSend",
    "error_response",
    "install_error_handlers",
    "internal_error",
    "scrub_paths",
    "validation_error",
]

logger = logging.getLogger("policyqa.api")

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "request_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    500: "internal_error",
    503: "not_ready",
}


class ApiError(Exception):
    """An error answered as it is: status, reason and optional headers."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})


_ABS_PATH = re.compile(r"(?<![\w.~:/])/[^\s'\"`<>()\[\]{}，。；：、！？]+")


@functools.lru_cache(maxsize=256)
def _is_top_dir(name: str) -> bool:
    return bool(name) and (Path("/") / name).exists()


def scrub_paths(text: str) -> str:
    """``text`` with every absolute path of this server's file system shortened to ``…/name``
    (an index directory, a temporary upload, the cache …): no response names a server path. A
    path whose first part is not a top-level directory here (``/documents/x``) is left alone."""

    def short(m: re.Match[str]) -> str:
        path = m.group(0)
        parts = [p for p in path.split("/") if p]
        if not parts or not _is_top_dir(parts[0]):
            return path
        return "…/" + parts[-1]

    return _ABS_PATH.sub(short, text)


def error_response(
    status: int,
    detail: str,
    *,
    headers: Mapping[str, str] | None = None,
    code: str | None = None,
    **extra: Any,
) -> JSONResponse:
    """The JSON error body every error uses (``code`` defaults to the status's)."""
    code = code or _CODES.get(status) or HTTPStatus(status).phrase.lower().replace(" ", "_")
    body: dict[str, Any] = {"error": code, "detail": scrub_paths(detail)}
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(jsonable_encoder(body), status_code=status, headers=dict(headers or {}))


#: What a pattern of the schemas means, said to a person instead of the raw regex.
_PATTERN_MEANINGS = {
    NO_NUL: "must not contain a NUL (\\u0000) character",
    NOT_BLANK: "must contain a visible character and no NUL (\\u0000) character",
    DOC_ID_PATTERN: "must be path-like segments joined by single '/', none empty, '.' or '..', "
    "with no backslash or control character",
}


def _message(e: Mapping[str, Any]) -> str:
    if e.get("type") == "string_pattern_mismatch":
        meaning = _PATTERN_MEANINGS.get(str((e.get("ctx") or {}).get("pattern", "")))
        if meaning:
            return meaning
    return str(e.get("msg", ""))


def _clean_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Pydantic errors without the offending input (it may be large or sensitive), with the
    schemas' patterns said in words."""
    out: list[dict[str, Any]] = []
    for e in errors:
        item: dict[str, Any] = {
            "loc": [p if isinstance(p, int) else str(p) for p in e.get("loc", ())],
            "msg": _message(e),
            "type": str(e.get("type", "")),
        }
        ctx = e.get("ctx")
        if ctx:
            item["ctx"] = {str(k): v if isinstance(v, int | float | bool) else str(v) for k, v in ctx.items()}
        out.append(item)
    return out


def _summary(errors: list[dict[str, Any]]) -> str:
    parts = []
    for e in errors[:3]:
        where = ".".join(str(p) for p in e["loc"] if p not in ("body",)) or "request"
        parts.append(f"{where}: {e['msg']}")
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return "; ".join(parts) + more


def validation_error(errors: Sequence[Any]) -> JSONResponse:
    """A 422 for pydantic-style errors."""
    cleaned = _clean_errors(errors)
    return error_response(422, _summary(cleaned) or "invalid request", errors=cleaned)


def _unreadable_body(cause: BaseException | None) -> str:
    """Why FastAPI could not parse a body, from the error it chained (it says only that it
    could not)."""
    if isinstance(cause, RecursionError):
        return "the JSON body is nested too deeply to read; send a flat request body"
    if isinstance(cause, UnicodeDecodeError):
        return "the request body is not UTF-8: send UTF-8 encoded JSON"
    return "the request body could not be read as JSON: send a UTF-8 JSON object"


_METHODS = ("DELETE", "GET", "PATCH", "POST", "PUT")


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at the request's path (Starlette's 405 names only the
    first matching route's). Each method is tried against the app's routes."""
    return [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL
            for route in request.app.router.routes
        )
    ]


def install_error_handlers(app: FastAPI) -> None:
    """Register the JSON error handlers on ``app``."""

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_error(exc.errors())

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        if exc.status_code == 400 and detail == "There was an error parsing the body":
            detail = _unreadable_body(exc.__cause__)
        elif exc.status_code == 404 and detail == "Not Found":
            detail = f"no such endpoint: {request.method} {request.url.path} (see /docs)"
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            allowed = _allowed_methods(request)
            headers["Allow"] = ", ".join(allowed)
            detail = f"{request.method} is not allowed on {request.url.path}; allowed: {', '.join(allowed)}"
        return error_response(exc.status_code, detail, headers=headers)

    @app.exception_handler(ApiError)
    async def _api(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.detail, headers=exc.headers, **exc.extra)

    @app.exception_handler(ServiceNotReadyError)
    async def _not_ready(request: Request, exc: ServiceNotReadyError) -> JSONResponse:
        return error_response(503, str(exc), headers={"Retry-After": "5"})

    @app.exception_handler(ServiceBusyError)
    async def _busy(request: Request, exc: ServiceBusyError) -> JSONResponse:
        return error_response(503, str(exc), headers={"Retry-After": str(exc.retry_after)}, code="busy")

    @app.exception_handler(DocumentNotFoundError)
    async def _no_doc(request: Request, exc: DocumentNotFoundError) -> JSONResponse:
        return error_response(404, str(exc))

    @app.exception_handler(NothingIndexedError)
    async def _nothing(request: Request, exc: NothingIndexedError) -> JSONResponse:
        files = [FileStatusOut.of(f) for f in exc.files]
        return error_response(422, str(exc), files=files)

    @app.exception_handler(IndexVersionError)
    async def _version(request: Request, exc: IndexVersionError) -> JSONResponse:
        return error_response(409, str(exc))

    @app.exception_handler(IndexNotFoundError)
    async def _no_index(request: Request, exc: IndexNotFoundError) -> JSONResponse:
        return error_response(503, str(exc), headers={"Retry-After": "30"})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return internal_error(request.method, request.url.path, exc)


def internal_error(method: str, path: str, exc: BaseException) -> JSONResponse:
    """A 500 naming only a reference id; the exception is logged under that id."""
    ref = uuid.uuid4().hex[:12]
    logger.error("internal error %s on %s %s", ref, method, path, exc_info=exc)
    return error_response(500, f"internal server error (reference {ref}); the server log has the details")


class TrackedSend:
    """An ASGI ``send`` that records whether the response has started (after which an error can
    no longer be answered with an error response)."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.started = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)


#: What the catch-all lets through: the process is stopping, or the request was cancelled.
_PASS_THROUGH = (KeyboardInterrupt, SystemExit, GeneratorExit, asyncio.CancelledError)


class CatchAllMiddleware:
    """The outermost layer: whatever escapes the app, ``BaseException`` included (a tokenizer's
    Rust panic is one), becomes the JSON 500 of :func:`internal_error` when no response has
    started yet; once one has, the connection is closed (the client sees a cut response, never a
    hang). Interrupts, exits and cancellations pass through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tracked = TrackedSend(send)
        try:
            await self.app(scope, receive, tracked)
        except _PASS_THROUGH:
            raise
        except BaseException as exc:
            if tracked.started:  # answered already (Starlette re-raises what its 500 handler logged)
                if not isinstance(exc, Exception):
                    logger.error("error after the response started on %s", scope.get("path"), exc_info=exc)
                return
            response = internal_error(scope.get("method", "GET"), scope.get("path", ""), exc)
            await response(scope, receive, send)
