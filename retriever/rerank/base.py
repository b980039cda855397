"""The rerank stage's contract and the plain reranker.

Every reranker implements :class:`Reranker`: ``rerank(query, hits, top_k) -> hits``. The hits
come back re-ranked, each with the score breakdown it had (``bm25``, ``dense``, ``fused`` and
their ranks) plus ``scores["rerank"]`` and ``ranks["rerank"]``; ``Hit.score`` and ``Hit.rank``
become the rerank score and rank (:func:`apply_rerank_scores`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from policyqa.retriever.base import Hit
from policyqa.retriever.common import check_top_k
from policyqa.retriever.fusion import zscore

__all__ = [
    "NoReranker",
    "Reranker",
    "apply_rerank_scores",
    "check_rerank_top_k",
    "document_best",
    "zscores",
]


@runtime_checkable
class Reranker(Protocol):
    """Re-orders candidate hits for a query.

    ``rerank`` returns at most ``top_k`` (all when None) of ``hits``, best first, ranks from 1,
    each hit keeping its earlier ``scores``/``ranks`` and gaining ``scores["rerank"]`` and
    ``ranks["rerank"]``. An empty ``hits`` gives an empty list.
    """

    name: str

    def warm_up(self) -> None: ...

    def rerank(self, query: str, hits: Sequence[Hit], top_k: int | None = None) -> list[Hit]: ...


def apply_rerank_scores(
    hits: Sequence[Hit], scores: Sequence[float], top_k: int | None = None, stage: str = "rerank"
) -> list[Hit]:
    """Hits sorted by ``scores`` (descending; ties keep the earlier order), ranks renumbered.

    The breakdown of every hit gains ``scores[stage]`` and ``ranks[stage]``.
    """
    if len(scores) != len(hits):
        raise ValueError(f"{len(scores)} scores for {len(hits)} hits")
    order = sorted(range(len(hits)), key=lambda i: (-float(scores[i]), i))
    if top_k is not None:
        order = order[:top_k]
    out: list[Hit] = []
    for new_rank, i in enumerate(order, start=1):
        h = hits[i]
        s = dict(h.scores)
        s[stage] = float(scores[i])
        r = dict(h.ranks)
        r[stage] = new_rank
        out.append(replace(h, score=float(scores[i]), rank=new_rank, scores=s, ranks=r))
    return out


def document_best(hits: Sequence[Hit], scores: Sequence[float]) -> list[float]:
    """Each hit's score replaced by the best score of its document's hits.

    Sorting by the result ranks documents by their best chunk; the chunks of one document tie,
    and :func:`apply_rerank_scores` keeps ties in the retriever's order.
    """
    best: dict[str, float] = {}
    for h, sc in zip(hits, scores, strict=True):
        best[h.doc_id] = max(float(sc), best.get(h.doc_id, float(sc)))
    return [best[h.doc_id] for h in hits]


def zscores(values: Sequence[float]) -> npt.NDArray[np.float64]:
    """Scores of the candidates of one question standardised over them (float64
    :func:`~policyqa.retriever.fusion.zscore`): how rerankers put unlike scores on one scale."""
    return zscore(np.asarray(values, dtype=np.float64))


def check_rerank_top_k(top_k: int | None) -> int | None:
    """``top_k`` when it is None (all) or a positive integer, else ``ValueError``."""
    return None if top_k is None else check_top_k(top_k)


class NoReranker:
    """Keeps the retriever's order (``rerank`` = ``none``)."""

    name = "none"

    def warm_up(self) -> None:
        """Nothing to load."""

    def rerank(self, query: str, hits: Sequence[Hit], top_k: int | None = None) -> list[Hit]:
        check_rerank_top_k(top_k)
        kept = list(hits)[:top_k] if top_k is not None else list(hits)
        return [h.with_rank(i) for i, h in enumerate(kept, start=1)]
