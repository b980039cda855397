"""Injectable dependencies: the service, the settings, the write-access check and limit checks."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from policyqa.api.errors import ApiError
from policyqa.service import QAService
from policyqa.settings import Settings

__all__ = [
    "ServiceDep",
    "SettingsDep",
    "WriteAccess",
    "check_query_length",
    "check_top_k",
    "get_service",
    "get_settings",
    "require_api_key",
    "require_json",
]


def get_service(request: Request) -> QAService:
    """The service the app was created with."""
    service: QAService = request.app.state.service
    return service


def get_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    settings: Settings = request.app.state.settings
    return settings


ServiceDep = Annotated[QAService, Depends(get_service)]
SettingsDep = Annotated[Settings, Depends(get_settings)]

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="APIKey",
    description="The server's API key (POLICYQA_API_KEY), as 'Authorization: Bearer <key>'. "
    "Needed by the write endpoints; a server without a key refuses all writes.",
)


def require_api_key(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Allow a write only with the configured key (compared in constant time).

    No key configured → 403 (writes are disabled, never open); no or malformed header → 401;
    wrong key → 401.
    """
    configured = settings.api_key.get_secret_value() if settings.api_key is not None else ""
    if not configured:
        raise ApiError(
            403,
            "writes are disabled on this server: no API key is configured "
            "(the operator sets POLICYQA_API_KEY to enable them)",
        )
    challenge = {"WWW-Authenticate": 'Bearer realm="policyqa"'}
    if credentials is None:
        raise ApiError(
            401, "this endpoint needs the API key: send 'Authorization: Bearer <key>'", headers=challenge
        )
    if not hmac.compare_digest(credentials.credentials.encode("utf-8"), configured.encode("utf-8")):
        raise ApiError(401, "the API key is not valid", headers=challenge)


WriteAccess = Annotated[None, Depends(require_api_key)]


def require_json(request: Request) -> None:
    """415 for a body sent without the Content-Type of JSON (``application/json`` or
    ``application/*+json``): FastAPI reads no other body as JSON."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == "application/json" or (media.startswith("application/") and media.endswith("+json")):
        return
    raise ApiError(
        415,
        f"unsupported Content-Type {media or '(none)'!r}: send the body as JSON with "
        "'Content-Type: application/json'",
    )


def check_query_length(text: str, field: str, settings: Settings) -> None:
    """422 naming the limit when a query is longer than ``max_query_chars``."""
    limit = settings.max_query_chars
    if len(text) > limit:
        raise _field_error(
            field,
            f"is {len(text)} characters long; the limit is {limit} characters",
            "string_too_long",
            {"max_length": limit},
        )


def check_top_k(top_k: int, settings: Settings) -> None:
    """422 naming the limit when ``top_k`` is above ``max_top_k``."""
    if top_k > settings.max_top_k:
        raise _field_error(
            "top_k",
            f"is {top_k}; the limit is {settings.max_top_k}",
            "less_than_equal",
            {"le": settings.max_top_k},
        )


def _field_error(field: str, msg: str, kind: str, ctx: dict[str, int]) -> ApiError:
    return ApiError(
        422,
        f"{field} {msg}",
        extra={"errors": [{"loc": ["body", field], "msg": f"{field} {msg}", "type": kind, "ctx": ctx}]},
    )
