"""Hybrid retriever of the embedded backend: BM25 and dense candidates fused into one ranking.

Each retriever contributes ``candidate_depth`` candidates; both chunk scores are computed
exactly for every candidate of the union (the BM25 score vector and the stored embeddings are at
hand), the document context is the whole document's BM25, and :func:`policyqa.retriever.fusion.fuse`
combines them (the same function the Milvus backend fuses with). The final cut to ``top_k``
comes after fusion; ties are broken by row (index order), so results are deterministic. Filters
are applied inside both retrievers, before their cut.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from .base import Filters, Hit
from .bm25 import BM25Retriever
from .common import check_query, check_top_k, hits_from_rows
from .dense import DenseRetriever
from .fusion import DEFAULT_FUSION, FusionMode, FusionOptions, fuse, top_order

__all__ = ["HybridRetriever"]


class HybridRetriever:
    """Fuses :class:`BM25Retriever` and :class:`DenseRetriever` candidates."""

    name = "hybrid"

    def __init__(
        self,
        bm25: BM25Retriever,
        dense: DenseRetriever,
        options: FusionOptions = DEFAULT_FUSION,
    ) -> None:
        self.bm25 = bm25
        self.dense = dense
        self.options = options
        self._counts: tuple[npt.NDArray[np.int32], npt.NDArray[np.int64]] | None = None

    def _chunk_counts(self, row_docs: npt.NDArray[np.int32]) -> npt.NDArray[np.int64]:
        """How many chunks each document has (by document position): counted once for the
        store's row map (the same array until the store reloads it)."""
        cached = self._counts
        if cached is None or cached[0] is not row_docs:
            cached = (row_docs, np.bincount(row_docs).astype(np.int64))
            self._counts = cached
        return cached[1]

    def _fuse(
        self, query: str, qvec: npt.NDArray[np.float32], top_k: int, filters: Filters | None
    ) -> list[Hit]:
        depth = max(self.options.candidate_depth, top_k)
        b_rows, _ = self.bm25.rank_rows(query, depth, filters)
        d_rows, _ = self.dense.rank_rows_vec(qvec, depth, filters)
        b_rank = {int(r): i + 1 for i, r in enumerate(b_rows)}
        d_rank = {int(r): i + 1 for i, r in enumerate(d_rows)}
        union = np.array(sorted(set(b_rank) | set(d_rank)), dtype=np.int64)
        if union.size == 0:
            return []
        bm = self.bm25.scores_of(query, union)
        de = self.dense.scores_of_vec(qvec, union.tolist())
        doc_scores = None
        doc_chunks = None
        if self.options.mode is not FusionMode.RRF and self.options.doc_weight > 0:
            docs = self.bm25.doc_score_vector(query)
            if docs is not None:
                row_docs = self.bm25.store.row_documents()
                doc_scores = docs[row_docs[union]]
                doc_chunks = self._chunk_counts(row_docs)[row_docs[union]]
        fused = fuse(
            bm,
            de,
            np.array([b_rank.get(r, 0) for r in union.tolist()], dtype=np.int64),
            np.array([d_rank.get(r, 0) for r in union.tolist()], dtype=np.int64),
            doc_scores,
            self.options,
            doc_chunks,
        )
        order = top_order(fused, union, top_k)
        rows = union[order].tolist()
        extra_scores = {int(union[i]): {"bm25": float(bm[i]), "dense": float(de[i])} for i in order}
        if doc_scores is not None:
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
