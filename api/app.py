"""The FastAPI application: API routes at ``/``, OpenAPI at ``/openapi.json``, chat page at ``/ui``.

:func:`create_app` wires the service layer, the error handlers, the body size limit, CORS
(closed unless origins are configured) and, unless disabled, the Gradio chat page. The index
and the models load in the lifespan, in a background thread: the server answers at once,
``/health`` says 503 until the index is ready and 200 from then on.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi_offline import FastAPIOffline
from pydantic.json_schema import models_json_schema

from policyqa import __version__
from policyqa.api.errors import CatchAllMiddleware, install_error_handlers
from policyqa.api.limits import AdmissionMiddleware, BodySizeLimitMiddleware
from policyqa.api.routes import ask, documents, health, originals, search
from policyqa.api.schemas import DocumentsIn
from policyqa.service import QAService
from policyqa.settings import Settings, get_settings

__all__ = ["create_app", "server_threads"]

logger = logging.getLogger("policyqa.api")

DESCRIPTION = """\
Semantic search and extractive question answering over Chinese policy documents.

* `POST /search` ranks passages (BM25, dense or hybrid) with their scores and character offsets.
* `POST /ask` extracts an answer span with a confidence and numbered citations.
* `GET /documents`, `GET /documents/{id}` list and show the indexed documents;
  `POST /documents` (files or JSON) and `DELETE /documents/{id}` change the index and need
  the API key (`Authorization: Bearer <key>`).
* `GET /health` is 200 once the index is loaded; `GET /stats` gives counts, model and index version.

Errors are JSON: `{"error": code, "detail": reason}` (422s add `errors` per field).
"""


def _openapi(app: FastAPI, settings: Settings) -> dict[str, Any]:
    """The OpenAPI schema, with the JSON upload model and the configured limits written in."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title="policyqa",
        version=__version__,
        description=DESCRIPTION,
        routes=app.routes,
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    _, defs = models_json_schema([(DocumentsIn, "validation")], ref_template="#/components/schemas/{model}")
    for name, model_schema in defs.get("$defs", {}).items():
        components.setdefault(name, model_schema)
    for model, field in (("SearchRequest", "query"), ("AskRequest", "question")):
        props = components.get(model, {}).get("properties", {})
        if field in props:
            props[field]["maxLength"] = settings.max_query_chars
        if "top_k" in props:
            props["top_k"]["maximum"] = settings.max_top_k
    upload = schema["paths"]["/documents"]["post"]["requestBody"]["content"]["multipart/form-data"]
    upload["schema"]["properties"]["files"]["maxItems"] = settings.max_upload_files
    app.openapi_schema = schema
    return schema


def server_threads(settings: Settings) -> int:
    """Threads for the synchronous routes: the ``server_threads`` setting, or four per core (the
    routes that run on them are short; ``/ask`` waits for its queue without a thread)."""
    return settings.server_threads or 4 * (os.cpu_count() or 1)


def create_app(
    settings: Settings | None = None,
    service: QAService | None = None,
    *,
    ui: bool | None = None,
) -> FastAPI:
    """The application.

    :param settings: the settings (default: from the environment).
    :param service: a service to serve (tests pass one with a small index); None creates one
        for ``settings.index_dir``, started in the lifespan and closed at shutdown.
    :param ui: mount the chat page at ``/ui`` (default: the ``serve_ui`` setting).
    """
    settings = settings or (service.settings if service else get_settings())
    owned = service is None
    svc = service or QAService(settings)
    mount_ui = settings.serve_ui if ui is None else ui

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # the thread pool of the synchronous routes, sized to the cores (AnyIO's default is 40)
        anyio.to_thread.current_default_thread_limiter().total_tokens = server_threads(settings)
        if not svc.ready:
            logger.info("loading the index at %s", svc.index_dir)
            svc.start_warm_up()
        yield
        if owned:
            svc.close()

    # the docs pages (/docs, /redoc) with their scripts served from the package, not a CDN:
    # they work on a network without internet access
    app = FastAPIOffline(
        title="policyqa",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        static_url="/docs-static",
    )
    app.state.service = svc
    app.state.settings = settings
    app.state.ui_mounted = False
    install_error_handlers(app)
    for router in (search.router, ask.router, documents.router, originals.router, health.router):
        app.include_router(router)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_request_bytes)
    app.add_middleware(AdmissionMiddleware, queue=svc.answers)
    app.add_middleware(CatchAllMiddleware)  # added last: the outermost layer
    app.openapi = lambda: _openapi(app, settings)  # type: ignore[method-assign]
    if mount_ui:
        from policyqa.ui.app import mount_ui as _mount

        _mount(app, svc)
        app.state.ui_mounted = True
    return app
