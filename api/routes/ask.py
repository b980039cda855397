"""``POST /ask``: an extracted answer with numbered citations."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from policyqa.answer.types import confidence_band
from policyqa.api.deps import ServiceDep, SettingsDep, check_query_length, check_top_k, require_json
from policyqa.api.errors import ApiError
from policyqa.api.routes import errors
from policyqa.api.schemas import AskRequest, AskResponse, CitationOut
from policyqa.service import AskResult

__all__ = ["answer_out", "router"]

router = APIRouter(tags=["ask"])


def answer_out(result: AskResult, explain: bool = False) -> AskResponse:
    """The response model of a service answer."""
    a = result.answer
    return AskResponse(
        question=result.question,
        searched_as=result.searched,
        answer=a.text,
        no_answer=a.no_answer,
        confidence=min(1.0, max(0.0, float(a.confidence))),
        confidence_label=confidence_band(a.confidence, a.no_answer),
        answer_type=a.answer_type,
        doc_id=a.doc_id,
        chunk_id=a.chunk_id,
        start=a.start,
        end=a.end,
        sentence=a.sentence,
        sentence_start=a.sentence_start,
        sentence_end=a.sentence_end,
        citation=a.citation,
        citations=[CitationOut(**c.to_dict(), holds_answer=c.number == a.citation) for c in a.citations],
        timings_ms={k: round(v, 3) for k, v in a.timings_ms.items()},
        took_ms=round(result.took_ms, 3),
        index_version=result.index_version,
        explanation=a.to_dict(explain=True)["passages"] if explain else None,
    )


@router.post(
    "/ask",
    response_model=AskResponse,
    summary="Answer a question",
    responses=errors(400, 415, 422, 500, 503),
    dependencies=[Depends(require_json)],
)
async def ask(body: AskRequest, service: ServiceDep, settings: SettingsDep) -> AskResponse:
    """Answer a question with a span extracted verbatim from a document (with its character
    offsets), a confidence, and numbered citations of the passages it was found among. When no
    passage answers it confidently, ``no_answer`` is true and the closest passages are still
    cited. Give earlier questions in ``history`` to ask follow-ups.

    Answers are computed a few at a time (``ask_concurrency``) behind a bounded queue: when the
    server is saturated a question is refused at once with 503 and ``Retry-After`` instead of
    waiting, and one that misses its deadline (``ask_deadline_s``) is answered 503 too."""
    check_query_length(body.question, "question", settings)
    check_top_k(body.top_k, settings)
    filters = body.filters.to_filters() if body.filters else None
    try:
        result = await service.ask_async(
            body.question,
            top_k=body.top_k,
            filters=filters,
            history=body.history,
            mode=body.mode.value,
            explain=body.explain,
        )
    except ValueError as exc:  # the question checks of retrieval and the answer stage
        raise ApiError(422, str(exc)) from None
    return answer_out(result, explain=body.explain)
