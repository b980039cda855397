"""Dense retriever: query embedding against the faiss index."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from policyqa.index.dense import DenseIndex, PassageEncoder
from policyqa.index.store import ChunkStore

from .base import Filters, Hit
from .common import MaskCache, check_query, check_top_k, hits_from_rows

__all__ = ["DenseRetriever"]


class DenseRetriever:
    """Ranks chunks by cosine similarity of multilingual embeddings."""

    name = "dense"

    def __init__(
        self, store: ChunkStore, index: DenseIndex, encoder: PassageEncoder, masks: MaskCache
    ) -> None:
        self.store = store
        self.index = index
        self.encoder = encoder
        self.masks = masks

    def embed(self, queries: Sequence[str]) -> npt.NDArray[np.float32]:
        return self.encoder.encode_queries([check_query(q) for q in queries])

    def rank_rows_vec(
        self, qvec: npt.NDArray[np.float32], depth: int, filters: Filters | None = None
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        rows, scores = self.index.search(qvec.reshape(1, -1), depth, self.masks.mask(filters))
        keep = rows[0] >= 0
        return rows[0][keep], scores[0][keep]

    def scores_of_vec(self, qvec: npt.NDArray[np.float32], rows: Sequence[int]) -> npt.NDArray[np.float32]:
        """Exact cosine of the given rows (same float16-rounded vectors as the faiss index)."""
        if not len(rows):
            return np.zeros(0, dtype=np.float32)
        emb = np.asarray(self.index.embeddings[np.asarray(rows, dtype=np.int64)], dtype=np.float32)
        return (emb @ qvec.astype(np.float32)).astype(np.float32)

    def _hits(self, qvec: npt.NDArray[np.float32], top_k: int, filters: Filters | None) -> list[Hit]:
        rows, scores = self.rank_rows_vec(qvec, top_k, filters)
        # faiss orders ties arbitrarily; make them deterministic (score desc, row asc)
        order = np.lexsort((rows, -scores))
        return hits_from_rows(self.store, rows[order].tolist(), scores[order].tolist(), self.name)

    def search(self, query: str, top_k: int = 10, filters: Filters | None = None) -> list[Hit]:
        return self._hits(self.embed([query])[0], check_top_k(top_k), filters)

    def batch_search(
        self, queries: Sequence[str], top_k: int = 10, filters: Filters | None = None
    ) -> list[list[Hit]]:
        check_top_k(top_k)
        if not queries:
            return []
        vecs = self.embed(queries)
        return [self._hits(v, top_k, filters) for v in vecs]
