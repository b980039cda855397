"""One router per feature: search, ask, documents, health (with stats)."""

from __future__ import annotations

from typing import Any

from policyqa.api.schemas import ErrorResponse

__all__ = ["ERRORS", "errors"]


def _err(description: str) -> dict[str, Any]:
    return {"model": ErrorResponse, "description": description}


#: Error responses the routes document (all bodies are :class:`ErrorResponse`).
ERRORS: dict[int | str, dict[str, Any]] = {
    400: _err("The request body could not be read (not UTF-8)."),
    401: _err("Missing or wrong API key (write endpoints)."),
    403: _err("Writes are disabled: the server has no API key configured."),
    404: _err("No such document."),
    409: _err("The index was built with other settings than the server's (rebuild it)."),
    413: _err("The request body is over the size limit."),
    415: _err("Unsupported Content-Type."),
    422: _err("Invalid request; 'errors' names the fields and limits."),
    500: _err("Internal error; the server log has the details (never a stack trace here)."),
    503: _err(
        "The index is not loaded yet (or failed to load), or the server is busy (error 'busy': the "
        "answer queue is full or the deadline passed); retry after the Retry-After seconds."
    ),
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The documented error responses for the given status codes."""
    return {code: ERRORS[code] for code in codes}
