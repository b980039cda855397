"""The ``rerank`` and ``answer`` systems of the benchmark suite (registered on import).

``rerank``
    The hybrid retriever's top ``settings.rerank_candidates`` re-ordered by the reranker named by
    ``settings.reranker`` (default: the embedded feature model); the rest of the hybrid list
    follows unchanged, so recall@100 is the hybrid's and only the head of the ranking moves.
``answer``
    :func:`policyqa.qa.ask`: reranked passages → the answer (sentence, or the date / amount /
    body / place inside it), with its citation offsets checked against the document text.
``answer-sentence``
    The same with typed narrowing switched off: the answer is always the whole sentence (what
    the ``contains`` metric is meant for).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from policyqa.eval.systems import AnswerFn, RetrieveFn, SystemContext, register_system
from policyqa.retriever.base import Hit

__all__ = ["answer_factory", "rerank_factory", "sentence_answer_factory"]


def rerank_factory(context: SystemContext) -> RetrieveFn:
    from policyqa.qa import make_reranker, reranked_search

    index = context.index
    settings = context.settings
    reranker = make_reranker(settings, index)
    reranker.warm_up()
    retriever = index.retriever("hybrid")
    depth = context.depth

    def search(query: str) -> list[Hit]:
        return reranked_search(
            index,
            query,
            reranker,
            candidates=settings.rerank_candidates,
            top_k=depth,
            retriever=retriever,
        )

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
    "hybrid top candidates re-ranked (settings.reranker: features | cross-encoder | none)",
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
