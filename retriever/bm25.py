"""BM25 retriever over the lexical index."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from policyqa.index.bm25 import BM25Index
from policyqa.index.store import ChunkStore
from policyqa.index.tokenizer import ChineseTokenizer

from ._common import MaskCache, check_query, check_top_k, hits_from_rows
from .base import Filters, Hit

__all__ = ["BM25Retriever"]


class BM25Retriever:
    """Ranks chunks by BM25 Okapi over jieba search-mode tokens."""

    name = "bm25"

    def __init__(
        self, store: ChunkStore, index: BM25Index, tokenizer: ChineseTokenizer, masks: MaskCache
    ) -> None:
        self.store = store
        self.index = index
        self.tokenizer = tokenizer
        self.masks = masks

    def rank_rows(
        self, query: str, depth: int, filters: Filters | None = None
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        tokens = self.tokenizer.tokenize(check_query(query))
        return self.index.top_k(tokens, depth, self.masks.mask(filters))

    def scores_of(self, query: str, rows: Sequence[int]) -> npt.NDArray[np.float32]:
        """Exact BM25 scores of the given rows (0 where no query token occurs)."""
        all_scores = self.index.scores(self.tokenizer.tokenize(check_query(query)))
        return all_scores[np.asarray(rows, dtype=np.int64)] if len(rows) else np.zeros(0, np.float32)

    def search(self, query: str, top_k: int = 10, filters: Filters | None = None) -> list[Hit]:
        rows, scores = self.rank_rows(query, check_top_k(top_k), filters)
        return hits_from_rows(self.store, rows.tolist(), scores.tolist(), self.name)

    def batch_search(
        self, queries: Sequence[str], top_k: int = 10, filters: Filters | None = None
    ) -> list[list[Hit]]:
        return [self.search(q, top_k, filters) for q in queries]
