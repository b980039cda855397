"""The query pipeline: retrieve → rerank → extract the answer → check its citation.

:class:`QAPipeline` is built and warmed once over an open index and used by everything that asks
or searches: ``policyqa ask``, the service (``/search``, ``/ask`` and the chat page) and the
benchmark suite. The search mode (bm25, dense, hybrid) is a parameter of each call.
:func:`make_reranker` and :func:`make_answerer` build the stages the settings name.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Protocol

from policyqa.answer.lora import BUILTIN_MAX_ANSWER_TOKENS, BUILTIN_READER
from policyqa.answer.reader import TransformersReader
from policyqa.answer.selector import SpanSelector
from policyqa.answer.types import Answer, CitationError, no_answer, verify_answer
from policyqa.index.base import OpenIndex
from policyqa.index.encoder import encoder_for
from policyqa.retriever.base import Filters, Hit, Retriever
from policyqa.retriever.common import check_top_k
from policyqa.retriever.factory import SEARCH_MODES, retriever_for
from policyqa.retriever.rerank import (
    BUILTIN_CROSS_ENCODER,
    CrossEncoderReranker,
    FeatureReranker,
    NoReranker,
    Reranker,
    SentenceReranker,
)
from policyqa.retriever.rerank.builtin import DEFAULT_CROSS_ENCODER_ADAPTER, NO_BUILTIN_CROSS_ENCODER
from policyqa.settings import Settings

__all__ = [
    "Answerer",
    "QAPipeline",
    "make_answerer",
    "make_reader",
    "make_reranker",
    "reranked_search",
    "span_evidence",
]

logger = logging.getLogger(__name__)


class Answerer(Protocol):
    """Picks the answer out of reranked passages (span selector or QA reader)."""

    def warm_up(self) -> None: ...

    def select(self, question: str, hits: Sequence[Hit]) -> Answer: ...


def make_reranker(settings: Settings, index: OpenIndex | None = None) -> Reranker:
    """The rerank stage named by ``settings.reranker`` (not yet warmed up).

    ``sentence`` uses the open ``index``'s encoder (without one, the encoder the settings name);
    ``features`` its tokenizer and BM25 statistics.
    """
    kind = settings.reranker
    if kind == "none":
        return NoReranker()
    if kind == "sentence":
        feature_model = Path(settings.rerank_model) if settings.rerank_model else None
        if index is not None:
            return SentenceReranker.for_index(
                index, settings.rerank_sentence_weight, settings.rerank_feature_weight, feature_model
            )
        features = (
            FeatureReranker(model_path=feature_model, depth=settings.candidate_depth)
            if settings.rerank_feature_weight > 0
            else None
        )
        return SentenceReranker(
            encoder_for(settings),
            settings.embedding_cache_dir,
            settings.rerank_sentence_weight,
            True,
            features,
            settings.rerank_feature_weight,
        )
    if kind == "cross-encoder":
        model = settings.rerank_model or BUILTIN_CROSS_ENCODER
        if model == BUILTIN_CROSS_ENCODER and not DEFAULT_CROSS_ENCODER_ADAPTER.is_file():
            raise ValueError(NO_BUILTIN_CROSS_ENCODER)
        return CrossEncoderReranker(
            model,
            max_length=settings.rerank_max_length,
            batch_size=settings.rerank_batch_size,
            device=settings.device,
            window_chars=settings.rerank_window_chars,
            fuse_weight=settings.rerank_fuse_weight,
            cache_dir=settings.cache_dir,
        )
    model_path = Path(settings.rerank_model) if settings.rerank_model else None
    if index is None:
        return FeatureReranker(model_path=model_path, depth=settings.candidate_depth)
    return FeatureReranker.for_index(index, model_path)


def make_reader(settings: Settings, model: str) -> TransformersReader:
    """A transformers QA reader (``builtin`` or a local model path) as the settings run it."""
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
    settings: Settings, index: OpenIndex | None, *, sentences: bool = True, reader: bool = True
) -> tuple[SentenceReranker | None, TransformersReader | None]:
    """What a boosted span model reads besides the spans: the sentence scorer over ``index``'s
    encoder (None without an index) and the builtin reader (not yet loaded); each only if asked."""
    scorer = (
        SentenceReranker(index.encoder, settings.embedding_cache_dir, feature_weight=0.0)
        if sentences and index is not None
        else None
    )
    return scorer, make_reader(settings, BUILTIN_READER) if reader else None


def make_answerer(settings: Settings, index: OpenIndex | None = None) -> Answerer:
    """The span selector (narrowed by ``settings.answer_narrow_reader`` when set), or the
    transformers reader when ``settings.answer_reader`` is set."""
    if settings.answer_reader:
        return make_reader(settings, settings.answer_reader)
    choice = settings.answer_span_model
    sentences, span_reader = None, None
    if choice != "linear" and index is not None:
        sentences, span_reader = span_evidence(settings, index)
    narrow_reader = None
    if settings.answer_narrow_reader:
        # one builtin reader serves both (the same model, loaded once)
        same = settings.answer_narrow_reader == BUILTIN_READER and span_reader is not None
        narrow_reader = span_reader if same else make_reader(settings, settings.answer_narrow_reader)
    return SpanSelector(
        index.tokenizer if index is not None else None,
        index.bm25 if index is not None else None,
        passages=settings.answer_passages,
        min_confidence=settings.answer_min_confidence,
        narrow=settings.answer_narrow,
        documents=index.store if index is not None else None,
        narrow_reader=narrow_reader,
        model_path=Path(choice) if choice and choice != "linear" else None,
        sentences=sentences,
        span_reader=span_reader,
        mbr_temperature=settings.answer_mbr_temperature,
    )


def reranked_search(
    retriever: Retriever,
    query: str,
    reranker: Reranker,
    *,
    candidates: int,
    top_k: int,
    filters: Filters | None = None,
) -> list[Hit]:
    """``retriever``'s top-``candidates`` re-ordered by ``reranker``; the top ``top_k`` come back.

    When ``top_k`` exceeds ``candidates`` the hits beyond the rerank window follow the reranked
    ones in the retriever's order (ranks continue).
    """
    hits: list[Hit] = retriever.search(query, top_k=max(candidates, top_k), filters=filters)
    head = reranker.rerank(query, hits[:candidates])
    tail = [h.with_rank(len(head) + i) for i, h in enumerate(hits[candidates:], start=1)]
    return (head + tail)[:top_k]


class _Timer:
    def __init__(self) -> None:
        self.marks: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.marks[name] = (now - self._t) * 1000.0
        self._t = now


class QAPipeline:
    """The query pipeline over one open index, built once and warmed once.

    :param index: the open index (either backend).
    :param settings: the settings of the stages (default: the index's); they may differ from
        the index's in what does not change the index (the reranker, the answer stage …).
    :param reranker: the rerank stage (default: :func:`make_reranker`).
    :param answerer: the span selector or reader (default: :func:`make_answerer`).
    """

    def __init__(
        self,
        index: OpenIndex,
        settings: Settings | None = None,
        *,
        reranker: Reranker | None = None,
        answerer: Answerer | None = None,
    ) -> None:
        self.index = index
        self.settings = settings or index.settings
        self.reranker = reranker or make_reranker(self.settings, index)
        self.answerer = answerer or make_answerer(self.settings, index)
        self._retrievers: dict[str, Retriever] = {}

    def warm_up(self) -> None:
        """Load the reranker's and the answer stage's models (the index's are loaded already)."""
        self.reranker.warm_up()
        self.answerer.warm_up()

    def retriever(self, mode: str = "hybrid") -> Retriever:
        """The retriever of ``mode`` (bm25, dense or hybrid; ``ValueError`` for another)."""
        found = self._retrievers.get(mode)
        if found is None:
            found = retriever_for(self.index, mode)
            self._retrievers[mode] = found
        return found

    def search(
        self, query: str, *, mode: str = "hybrid", top_k: int = 10, filters: Filters | None = None
    ) -> list[Hit]:
        """Passages for ``query``, best first, as ``mode`` ranks them (no reranking)."""
        return self.retriever(mode).search(query, top_k=top_k, filters=filters)

    def reranked(
        self,
        query: str,
        *,
        mode: str = "hybrid",
        top_k: int | None = None,
        filters: Filters | None = None,
    ) -> list[Hit]:
        """``mode``'s top ``settings.rerank_candidates`` passages reranked, then the rest of its
        list: ``top_k`` in all (default: the rerank window)."""
        window = self.settings.rerank_candidates
        return reranked_search(
            self.retriever(mode),
            query,
            self.reranker,
            candidates=window,
            top_k=window if top_k is None else top_k,
            filters=filters,
        )

    def ask(
        self,
        question: str,
        *,
        mode: str = "hybrid",
        top_k: int = 5,
        filters: Filters | None = None,
        explain: bool = False,
    ) -> Answer:
        """The answer to ``question``, verbatim from a document, with numbered citations.

        :param mode: the retrieval that finds the candidate passages (then reranked).
        :param top_k: passages returned as citations (the answer is searched in the top
            ``settings.answer_passages``).
        :param explain: keep every passage's score breakdown in ``Answer.passages``.
        :raises ValueError: an empty question, a bad ``top_k`` or an unknown mode.
        :raises CitationError: an answer whose offsets do not reproduce it (a bug, never hidden).
        """
        q = question.strip() if isinstance(question, str) else ""
        if not q:
            raise ValueError("the question is empty: ask something, e.g. 稳岗返还的比例是多少？")
        check_top_k(top_k)
        if mode not in SEARCH_MODES:
            raise ValueError(f"unknown search mode {mode!r}; choose one of: {', '.join(SEARCH_MODES)}")
        timer = _Timer()
        depth = max(top_k, self.settings.answer_passages)
        hits = reranked_search(
            self.retriever(mode),
            q,
            self.reranker,
            candidates=max(self.settings.rerank_candidates, depth),
            top_k=depth,
            filters=filters,
        )
        timer.lap("retrieve_rerank")
        answer = no_answer(q, []) if not hits else self.answerer.select(q, hits)
        timer.lap("answer")
        answer = self._check(answer)
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

    def _check(self, answer: Answer) -> Answer:
        """Mechanical citation check: the answer must be its document's text at its offsets."""
        if answer.no_answer or answer.doc_id is None:
            return answer
        doc = self.index.store.get_document(answer.doc_id)
        if doc is None:
            raise CitationError(f"answer cites document {answer.doc_id}, which is not in the index")
        verify_answer(answer, doc.text)
        return answer
