"""BM25 retriever over the lexical index."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from policyqa.index.bm25 import BM25Index, top_rows
from policyqa.index.store import ChunkStore
from policyqa.index.tokenizer import ChineseTokenizer

from .base import Filters, Hit
from .common import MaskCache, check_query, check_top_k, hits_from_rows

__all__ = ["BM25Retriever"]


class BM25Retriever:
    """Ranks chunks by BM25 Okapi over jieba search-mode words and character bigrams."""

    name = "bm25"

    def __init__(
        self,
        store: ChunkStore,
        index: BM25Index,
        tokenizer: ChineseTokenizer,
        masks: MaskCache,
        doc_index: BM25Index | None = None,
    ) -> None:
        self.store = store
        self.index = index
        self.doc_index = doc_index
        self.tokenizer = tokenizer
        self.masks = masks
        self._token_cache: dict[str, list[str]] = {}
        self._cache_lock = threading.Lock()

    def _tokens(self, query: str) -> list[str]:
        """The query's BM25 terms; the last few queries' are kept (hybrid search asks three times)."""
        query = check_query(query)
        cached = self._token_cache.get(query)
        if cached is None:
            cached = self.tokenizer.terms(query)
            with self._cache_lock:
                if len(self._token_cache) >= 64:
                    self._token_cache.pop(next(iter(self._token_cache)))
                self._token_cache[query] = cached
        return cached

    def score_vector(self, query: str) -> npt.NDArray[np.float32]:
        """The BM25 score of every row for the query."""
        return self.index.scores(self._tokens(query))

    def scores_of(self, query: str, rows: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
        """The BM25 scores of ``rows`` only (equal to ``score_vector(query)[rows]``)."""
        return self.index.score_rows(self._tokens(query), rows)

    def doc_score_vector(self, query: str) -> npt.NDArray[np.float32] | None:
        """BM25 of every whole document (in document order), or None without a document index."""
        if self.doc_index is None or self.doc_index.size == 0:
            return None
        return self.doc_index.scores(self._tokens(query))

    def rank_rows(
        self, query: str, depth: int, filters: Filters | None = None
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """The ``depth`` best rows and their scores (exact; pruned in large indexes)."""
        return self.index.top_k(self._tokens(query), depth, self.masks.mask(filters))

    def rank_vector(
        self, scores: npt.NDArray[np.float32], depth: int, filters: Filters | None = None
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        return top_rows(scores, depth, self.masks.mask(filters))

    def search(self, query: str, top_k: int = 10, filters: Filters | None = None) -> list[Hit]:
        rows, scores = self.rank_rows(query, check_top_k(top_k), filters)
        return hits_from_rows(self.store, rows.tolist(), scores.tolist(), self.name)

    def batch_search(
        self, queries: Sequence[str], top_k: int = 10, filters: Filters | None = None
    ) -> list[list[Hit]]:
        return [self.search(q, top_k, filters) for q in queries]
