"""Hybrid retriever: BM25 and dense candidates fused into one ranking.

Three fusion modes (:class:`FusionMode`):

``zscore`` (default)
    A convex combination of z-normalised scores: each signal is standardised over the union of
    candidates (``(s - mean) / std``), so a retriever whose top candidates stand out from the rest
    weighs more for that query than one whose scores are flat, whichever retriever it is. The
    signals are the chunk's BM25 score, its dense cosine and, as document context, the BM25
    score of its whole document (weights ``(1 - c) * w``, ``(1 - c) * (1 - w)`` and ``c`` for
    ``bm25_weight = w`` and ``doc_weight = c``; the defaults give each a third). Questions often
    name the document's subject (a city, an agency, a programme) while the answering paragraph
    does not repeat it, so the whole-document score lets the right document's paragraphs rise.
``rrf``
    Reciprocal rank fusion (Cormack et al., 2009): ``score = Σ_s w_s / (k + rank_s)`` over the
    systems whose candidate list holds the chunk (ranks start at 1). ``k`` defaults to 60, the
    constant of the original paper also used by Elasticsearch and LangChain; the weights are
    ``bm25_weight`` and ``1 - bm25_weight``.
``weighted``
    The same combination with min-max instead of z normalisation.

For the score-based modes, both chunk scores are computed exactly for every candidate (the BM25
score vector and the stored embeddings are at hand) instead of imputing 0 for a chunk that is
missing from one list.

Each retriever contributes ``candidate_depth`` candidates; the final cut to ``top_k`` comes after
fusion. Ties are broken by row (index order), so results are deterministic. Filters are applied
inside both retrievers, before their cut.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from .base import Filters, Hit
from .bm25 import BM25Retriever
from .common import check_query, check_top_k, hits_from_rows
from .dense import DenseRetriever

__all__ = ["RRF_K", "FusionMode", "HybridRetriever", "check_fusion_options"]

#: Default RRF constant (Cormack, Clarke & Büttcher, SIGIR 2009).
RRF_K = 60


def check_fusion_options(bm25_weight: float, doc_weight: float, rrf_k: int, candidate_depth: int) -> None:
    """Raise ValueError naming the first fusion option out of range (shared by every backend)."""
    if not 0.0 <= bm25_weight <= 1.0:
        raise ValueError(f"bm25_weight must be in [0, 1], got {bm25_weight}")
    if not 0.0 <= doc_weight <= 1.0:
        raise ValueError(f"doc_weight must be in [0, 1], got {doc_weight}")
    if rrf_k < 1:
        raise ValueError(f"rrf_k must be >= 1, got {rrf_k}")
    if candidate_depth < 1:
        raise ValueError(f"candidate_depth must be >= 1, got {candidate_depth}")


class FusionMode(StrEnum):
    ZSCORE = "zscore"
    RRF = "rrf"
    WEIGHTED = "weighted"

    @classmethod
    def from_str(cls, value: str) -> FusionMode:
        try:
            return cls(value.strip().lower())
        except ValueError:
            allowed = ", ".join(m.value for m in cls)
            raise ValueError(f"unknown fusion mode {value!r}; choose one of: {allowed}") from None


def _zscore(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    if x.size == 0:
        return x
    std = float(x.std())
    if std <= 1e-12:
        return np.zeros_like(x)
    return ((x - float(x.mean())) / std).astype(np.float32)


def _minmax(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    if x.size == 0:
        return x
    lo, hi = float(x.min()), float(x.max())
    if hi - lo <= 1e-12:
        return np.ones_like(x) if hi > 0 else np.zeros_like(x)
    return ((x - lo) / (hi - lo)).astype(np.float32)


class HybridRetriever:
    """Fuses :class:`BM25Retriever` and :class:`DenseRetriever` candidates."""

    name = "hybrid"

    def __init__(
        self,
        bm25: BM25Retriever,
        dense: DenseRetriever,
        mode: FusionMode | str = FusionMode.ZSCORE,
        bm25_weight: float = 0.5,
        doc_weight: float = 1 / 3,
        rrf_k: int = RRF_K,
        candidate_depth: int = 100,
    ) -> None:
        check_fusion_options(bm25_weight, doc_weight, rrf_k, candidate_depth)
        self.bm25 = bm25
        self.dense = dense
        self.mode = mode if isinstance(mode, FusionMode) else FusionMode.from_str(mode)
        self.bm25_weight = bm25_weight
        self.doc_weight = doc_weight
        self.rrf_k = rrf_k
        self.candidate_depth = candidate_depth

    def _fuse(
        self, query: str, qvec: npt.NDArray[np.float32], top_k: int, filters: Filters | None
    ) -> list[Hit]:
        depth = max(self.candidate_depth, top_k)
        b_rows, _ = self.bm25.rank_rows(query, depth, filters)
        d_rows, _ = self.dense.rank_rows_vec(qvec, depth, filters)
        b_rank = {int(r): i + 1 for i, r in enumerate(b_rows)}
        d_rank = {int(r): i + 1 for i, r in enumerate(d_rows)}
        union = np.array(sorted(set(b_rank) | set(d_rank)), dtype=np.int64)
        if union.size == 0:
            return []
        bm = self.bm25.scores_of(query, union)
        de = self.dense.scores_of_vec(qvec, union.tolist())
        w = self.bm25_weight
        docs = None
        if self.mode is FusionMode.RRF:
            fused = np.array(
                [
                    (w / (self.rrf_k + b_rank[r]) if r in b_rank else 0.0)
                    + ((1 - w) / (self.rrf_k + d_rank[r]) if r in d_rank else 0.0)
                    for r in union.tolist()
                ],
                dtype=np.float64,
            )
        else:
            norm = _zscore if self.mode is FusionMode.ZSCORE else _minmax
            fused = (w * norm(bm) + (1 - w) * norm(de)).astype(np.float64)
            docs = self.bm25.doc_score_vector(query) if self.doc_weight > 0 else None
            if docs is not None:
                doc_scores = docs[self.bm25.store.row_documents()[union]]
                fused = (1 - self.doc_weight) * fused + self.doc_weight * norm(doc_scores).astype(np.float64)
        order = np.lexsort((union, -fused))[:top_k]
        rows = union[order].tolist()
        extra_scores = {int(union[i]): {"bm25": float(bm[i]), "dense": float(de[i])} for i in order}
        if self.mode is not FusionMode.RRF and docs is not None:
            for i in order:
                extra_scores[int(union[i])]["doc_bm25"] = float(doc_scores[i])
        extra_ranks: dict[int, dict[str, int]] = {}
        for r in rows:
            ranks: dict[str, int] = {}
            if r in b_rank:
                ranks["bm25"] = b_rank[r]
            if r in d_rank:
                ranks["dense"] = d_rank[r]
            extra_ranks[r] = ranks
        return hits_from_rows(
            self.bm25.store,
            rows,
            fused[order].tolist(),
            "fused",
            extra_scores=extra_scores,
            extra_ranks=extra_ranks,
        )

    def search(self, query: str, top_k: int = 10, filters: Filters | None = None) -> list[Hit]:
        query = check_query(query)
        return self._fuse(query, self.dense.embed([query])[0], check_top_k(top_k), filters)

    def batch_search(
        self, queries: Sequence[str], top_k: int = 10, filters: Filters | None = None
    ) -> list[list[Hit]]:
        check_top_k(top_k)
        if not queries:
            return []
        qs = [check_query(q) for q in queries]
        vecs = self.dense.embed(qs)
        return [self._fuse(q, v, top_k, filters) for q, v in zip(qs, vecs, strict=True)]
