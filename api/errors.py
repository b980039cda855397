"""Errors as JSON: ``{"error": code, "detail": reason}``, never a stack trace.

Domain errors of the service layer are translated here, at the edge: not ready → 503, unknown
document → 404, nothing indexable → 422 with per-file status, index built with other settings
→ 409. Anything unexpected is logged with a reference id and answered with a 500 naming only
that id.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from policyqa.api.schemas import FileStatusOut
from policyqa.index.layout import IndexNotFoundError, IndexVersionError
from policyqa.service import DocumentNotFoundError, NothingIndexedError, ServiceNotReadyError

__all__ = ["ApiError", "error_response", "install_error_handlers", "validation_error"]

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


def error_response(
    status: int,
    detail: str,
    *,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """The JSON error body every error uses."""
    code = _CODES.get(status) or HTTPStatus(status).phrase.lower().replace(" ", "_")
    body: dict[str, Any] = {"error": code, "detail": detail}
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(jsonable_encoder(body), status_code=status, headers=dict(headers or {}))


def _clean_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Pydantic errors without the offending input (it may be large or sensitive)."""
    out: list[dict[str, Any]] = []
    for e in errors:
        item: dict[str, Any] = {
            "loc": [p if isinstance(p, int) else str(p) for p in e.get("loc", ())],
            "msg": str(e.get("msg", "")),
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
            detail = "the request body could not be read: send UTF-8 encoded JSON"
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
        ref = uuid.uuid4().hex[:12]
        logger.error("internal error %s on %s %s", ref, request.method, request.url.path, exc_info=exc)
        return error_response(500, f"internal server error (reference {ref}); the server log has the details")
