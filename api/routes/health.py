"""``GET /health`` (liveness and readiness), ``GET /stats`` and ``GET /``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from policyqa import __version__
from policyqa.api.deps import ServiceDep
from policyqa.api.errors import scrub_paths
from policyqa.api.routes import errors
from policyqa.api.schemas import AnswerQueueStats, HealthResponse, ModelInfo, StatsResponse

__all__ = ["ServiceInfo", "router"]

router = APIRouter(tags=["service"])


class ServiceInfo(BaseModel):
    """Where things are."""

    name: str = Field(description="Service name.")
    version: str = Field(description="policyqa version.")
    docs: str = Field(description="Interactive API documentation.")
    openapi: str = Field(description="The OpenAPI schema.")
    health: str = Field(description="Liveness and readiness.")
    ui: str | None = Field(description="The chat page, when it is served.")


@router.get("/", response_model=ServiceInfo, summary="Service links")
def root(request: Request) -> ServiceInfo:
    """Links to the docs, the schema, health and the chat page."""
    return ServiceInfo(
        name="policyqa",
        version=__version__,
        docs="/docs",
        openapi="/openapi.json",
        health="/health",
        ui="/ui" if request.app.state.ui_mounted else None,
    )


@router.get(
    "/health",
    response_model=HealthResponse,
    summary="Liveness and readiness",
    responses={503: {"model": HealthResponse, "description": "Alive, but the index is not loaded (yet)."}},
)
def health(service: ServiceDep) -> JSONResponse:
    """200 with ``ready: true`` once the index is loaded; 503 (with ``status`` and ``detail``)
    while it is loading or being built, or when it failed to load."""
    state = service.health()
    if state.get("detail"):
        state["detail"] = scrub_paths(state["detail"])
    body = HealthResponse.model_validate(state)
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if body.ready else 503)


@router.get("/stats", response_model=StatsResponse, summary="Index statistics", responses=errors(500, 503))
def stats(service: ServiceDep) -> StatsResponse:
    """Document and chunk counts, the dense model, and the index version and configuration."""
    s = service.stats()
    return StatsResponse.model_validate(
        {
            **s,
            "model": ModelInfo.model_validate(s["model"]),
            "answer_queue": AnswerQueueStats.model_validate(service.answers.stats()),
        }
    )
