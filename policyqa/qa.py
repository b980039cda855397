"""Question answering over an open index: retrieve → rerank → extract the answer → check citations.

:func:`ask` is what ``policyqa ask`` (and the eval ``answer`` system) call; :func:`make_reranker`
builds the rerank stage named by the settings, :func:`make_answerer` the span selector or the
optional transformers reader.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from policyqa.retriever.answer import Answer, CitationError, SpanSelector, no_answer, verify_answer
from policyqa.retriever.base import Filters, Hit
from policyqa.retriever.rerank import (
    CrossEncoderReranker,
    FeatureReranker,
    NoReranker,
    Reranker,
    SentenceReranker,
)
from policyqa.settings import Settings

__all__ = [
    "Answerer",
    "ask",
    "make_answerer",
    "make_reranker",
    "reranked_search",
    "reranked_searcher",
    "span_evidence",
]

logger = logging.getLogger(__name__)


class Answerer(Protocol):
    """Picks the answer out of reranked passages (span selector or QA reader)."""

    def warm_up(self) -> None: ...

    def select(self, question: str, hits: Sequence[Hit]) -> Answer: ...


def make_reranker(settings: Settings, index: Any = None) -> Reranker:
    """The rerank stage named by ``settings.reranker`` (not yet warmed up).

    ``sentence`` uses the open ``index``'s encoder (without one, the encoder the settings name);
    ``features`` its tokenizer and BM25 statistics.
    """
    kind = settings.reranker
    if kind == "none":
        return NoReranker()
    if kind == "sentence":
        feature_model = Path(settings.rerank_model) if settings.rerank_model else None
        if index is not None and getattr(index, "encoder", None) is not None:
            return SentenceReranker.for_index(
                index, settings.rerank_sentence_weight, settings.rerank_feature_weight, feature_model
            )
        from policyqa.pipeline import make_encoder

        features = (
            FeatureReranker(model_path=feature_model, depth=settings.candidate_depth)
            if settings.rerank_feature_weight > 0
            else None
        )
        return SentenceReranker(
            make_encoder(settings),
            settings.embedding_cache_dir,
            settings.rerank_sentence_weight,
            True,
            features,
            settings.rerank_feature_weight,
        )
    if kind == "cross-encoder":
        if not settings.rerank_model:
            raise ValueError(
                "reranker 'cross-encoder' needs a model: set POLICYQA_RERANK_MODEL to a "
                "CrossEncoder name or local path (e.g. a local bge-reranker-v2-m3)"
            )
        return CrossEncoderReranker(
            settings.rerank_model,
            max_length=settings.rerank_max_length,
            batch_size=settings.rerank_batch_size,
            device=settings.device,
        )
    model_path = Path(settings.rerank_model) if settings.rerank_model else None
    if index is None:
        return FeatureReranker(model_path=model_path, depth=settings.candidate_depth)
    return FeatureReranker.for_index(index, model_path)


def _reader(settings: Settings, model: str) -> Any:
    from policyqa.retriever.reader import TransformersReader
    from policyqa.retriever.reader_adapter import BUILTIN_MAX_ANSWER_TOKENS, BUILTIN_READER

    return TransformersReader(
        model,
        passages=settings.answer_passages,
        min_confidence=settings.answer_min_confidence,
        device=settings.device,
        cache_dir=settings.cache_dir,
        max_answer_tokens=BUILTIN_MAX_ANSWER_TOKENS if model == BUILTIN_READER else 64,
        backend=settings.answer_reader_backend,
    )


def span_evidence(
    settings: Settings, index: Any, *, sentences: bool = True, reader: bool = True
) -> tuple[Any, Any]:
    """What a boosted span model reads besides the spans: the sentence scorer over ``index``'s
    encoder (None without one) and the builtin reader (not yet loaded); each only if asked for."""
    from policyqa.retriever.reader_adapter import BUILTIN_READER

    encoder = getattr(index, "encoder", None)
    scorer = (
        SentenceReranker(encoder, settings.embedding_cache_dir, feature_weight=0.0)
        if sentences and encoder is not None
        else None
    )
    return scorer, _reader(settings, BUILTIN_READER) if reader else None


def make_answerer(settings: Settings, index: Any = None) -> Answerer:
    """The span selector (narrowed by ``settings.answer_narrow_reader`` when set), or the
    transformers reader when ``settings.answer_reader`` is set."""
    if settings.answer_reader:
        reader: Answerer = _reader(settings, settings.answer_reader)
        return reader
    from policyqa.retriever.reader_adapter import BUILTIN_READER

    choice = settings.answer_span_model
    sentences, span_reader = None, None
    if choice != "linear" and getattr(index, "encoder", None) is not None:
        sentences, span_reader = span_evidence(settings, index)
    narrow_reader = None
    if settings.answer_narrow_reader:
        # one builtin reader serves both (the same model, loaded once)
        same = settings.answer_narrow_reader == BUILTIN_READER and span_reader is not None
        narrow_reader = span_reader if same else _reader(settings, settings.answer_narrow_reader)
    return SpanSelector(
        getattr(index, "tokenizer", None),
        getattr(index, "bm25", None),
        passages=settings.answer_passages,
        min_confidence=settings.answer_min_confidence,
        narrow=settings.answer_narrow,
        documents=getattr(index, "store", None),
        narrow_reader=narrow_reader,
        model_path=Path(choice) if choice and choice != "linear" else None,
        sentences=sentences,
        span_reader=span_reader,
        mbr_temperature=settings.answer_mbr_temperature,
    )


def reranked_search(
    index: Any,
    query: str,
    reranker: Reranker,
    *,
    candidates: int,
    top_k: int,
    filters: Filters | None = None,
    retriever: Any = None,
) -> list[Hit]:
    """Hybrid top-``candidates`` re-ordered by ``reranker``; the top ``top_k`` come back.

    When ``top_k`` exceeds ``candidates`` the hybrid hits beyond the rerank window follow the
    reranked ones in their hybrid order (ranks continue).
    """
    retriever = retriever or index.retriever("hybrid")
    hits: list[Hit] = retriever.search(query, top_k=max(candidates, top_k), filters=filters)
    head = reranker.rerank(query, hits[:candidates])
    tail = [h.with_rank(len(head) + i) for i, h in enumerate(hits[candidates:], start=1)]
    return (head + tail)[:top_k]


def reranked_searcher(index: Any, settings: Settings, top_k: int | None = None) -> Callable[[str], list[Hit]]:
    """A query → reranked hits callable (the hybrid retriever and the warmed reranker built once):
    :func:`reranked_search` with ``settings.rerank_candidates`` candidates and ``top_k`` hits
    (default: the candidates)."""
    reranker = make_reranker(settings, index)
    reranker.warm_up()
    retriever = index.retriever("hybrid")
    depth = settings.rerank_candidates if top_k is None else top_k

    def search(query: str) -> list[Hit]:
        return reranked_search(
            index, query, reranker, candidates=settings.rerank_candidates, top_k=depth, retriever=retriever
        )

    return search


def _check(index: Any, answer: Answer) -> Answer:
    """Mechanical citation check: the answer must be its document's text at its offsets."""
    if answer.no_answer or answer.doc_id is None:
        return answer
    doc = index.store.get_document(answer.doc_id)
    if doc is None:
        raise CitationError(f"answer cites document {answer.doc_id}, which is not in the index")
    verify_answer(answer, doc.text)
    return answer


class _Timer:
    def __init__(self) -> None:
        self.marks: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.marks[name] = (now - self._t) * 1000.0
        self._t = now


def ask(
    index: Any,
    question: str,
    settings: Settings,
    *,
    top_k: int = 5,
    filters: Filters | None = None,
    reranker: Reranker | None = None,
    answerer: Answerer | None = None,
    explain: bool = False,
) -> Answer:
    """Answer ``question`` from the open ``index``.

    :param top_k: passages returned as citations (the answer is searched in the top
        ``settings.answer_passages``).
    :param reranker: the rerank stage (default: :func:`make_reranker`); pass one to reuse it.
    :param answerer: the span selector or reader (default: :func:`make_answerer`).
    :param explain: keep every passage's score breakdown in ``Answer.passages`` (it is kept
        anyway; the flag only documents intent for callers that print it).
    :raises ValueError: an empty question or a bad ``top_k``.
    :raises CitationError: an answer whose offsets do not reproduce it (a bug, never hidden).
    """
    q = question.strip() if isinstance(question, str) else ""
    if not q:
        raise ValueError("the question is empty: ask something, e.g. 稳岗返还的比例是多少？")
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
    timer = _Timer()
    reranker = reranker or make_reranker(settings, index)
    answerer = answerer or make_answerer(settings, index)
    depth = max(top_k, settings.answer_passages)
    hits = reranked_search(
        index, q, reranker, candidates=max(settings.rerank_candidates, depth), top_k=depth, filters=filters
    )
    timer.lap("retrieve_rerank")
    answer = no_answer(q, []) if not hits else answerer.select(q, hits)
    timer.lap("answer")
    answer = _check(index, answer)
    cut = answer.citations[:top_k]
    if answer.citation is not None and answer.citation > top_k:
        cut = (*cut, answer.citations[answer.citation - 1])
    logger.debug("ask %r: %s (%.2f)", q, answer.text[:40], answer.confidence)
    return replace(
        answer,
        citations=cut,
        passages=answer.passages[:top_k] if not explain else answer.passages,
        timings_ms=dict(timer.marks),
    )


def answer_fn(index: Any, settings: Settings) -> Callable[[str], Answer]:
    """A question → answer callable with the reranker and answerer built (and warmed) once."""
    reranker = make_reranker(settings, index)
    answerer = make_answerer(settings, index)
    reranker.warm_up()
    answerer.warm_up()

    def run(question: str) -> Answer:
        return ask(index, question, settings, reranker=reranker, answerer=answerer)

    return run
