"""The ``rerank`` and ``answer`` systems of the benchmark suite (registered on import).

``rerank``
    The hybrid retriever's top ``settings.rerank_candidates`` re-ordered by the reranker named by
    ``settings.reranker`` (default: the sentence reranker); the rest of the hybrid list
    follows unchanged, so recall@100 is the hybrid's and only the head of the ranking moves.
``answer``
    :func:`policyqa.qa.ask`: reranked passages → the answer (sentence, or the date / amount /
    body / place inside it), with its citation offsets checked against the document text.
``answer-sentence``
    The same with narrowing switched off: the answer is always the whole sentence(s).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from policyqa.eval.systems import AnswerFn, RetrieveFn, SystemContext, register_system

__all__ = ["answer_factory", "rerank_factory", "sentence_answer_factory"]


def rerank_factory(context: SystemContext) -> RetrieveFn:
    from policyqa.qa import reranked_searcher

    search: RetrieveFn = reranked_searcher(context.index, context.settings, top_k=context.depth)
    return search


def _answer(narrow: bool | None) -> Callable[[SystemContext], AnswerFn]:
    def factory(context: SystemContext) -> AnswerFn:
        from policyqa.qa import answer_fn

        settings = context.settings
        if narrow is not None:
            settings = settings.model_copy(update={"answer_narrow": narrow})
        fn: Callable[[str], Any] = answer_fn(context.index, settings)
        return fn

    return factory


answer_factory = _answer(None)
sentence_answer_factory = _answer(False)

register_system(
    "rerank",
    "retrieval",
    rerank_factory,
    "hybrid top candidates re-ranked (settings.reranker: sentence | features | cross-encoder | none)",
    replace=True,
)
register_system(
    "answer",
    "answer",
    answer_factory,
    "extractive answer (sentence or typed span) with citations",
    replace=True,
)
register_system(
    "answer-sentence",
    "answer",
    sentence_answer_factory,
    "extractive answer, always the whole sentence",
    replace=True,
)
