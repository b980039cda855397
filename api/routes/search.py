"""``POST /search``: ranked passages for a query."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from policyqa.api.deps import ServiceDep, SettingsDep, check_query_length, check_top_k, require_json
from policyqa.api.errors import ApiError
from policyqa.api.routes import errors
from policyqa.api.schemas import HitOut, SearchRequest, SearchResponse

__all__ = ["router"]

router = APIRouter(tags=["search"])


@router.post(
    "/search",
    response_model=SearchResponse,
    summary="Search passages",
    responses=errors(400, 415, 422, 500, 503),
    dependencies=[Depends(require_json)],
)
def search(body: SearchRequest, service: ServiceDep, settings: SettingsDep) -> SearchResponse:
    """Rank passages for a query with BM25, dense or hybrid retrieval, optionally filtered by
    issuing body, document type, region, date range or document ids. The same results as
    ``policyqa search --json``."""
    check_query_length(body.query, "query", settings)
    check_top_k(body.top_k, settings)
    filters = body.filters.to_filters() if body.filters else None
    try:
        result = service.search(body.query, mode=body.mode.value, top_k=body.top_k, filters=filters)
    except ValueError as exc:  # the retrievers' own query checks
        raise ApiError(422, str(exc)) from None
    return SearchResponse(
        query=result.query,
        mode=body.mode,
        top_k=result.top_k,
        took_ms=round(result.took_ms, 3),
        index_version=result.index_version,
        hits=[HitOut.model_validate(h.to_dict()) for h in result.hits],
    )
