"""A query's terms and their weights, as the rerankers' and the answer stage's features read them.

:class:`TermStats` gives the inverse document frequency of a BM25 term (from the index's own
BM25 statistics), :class:`QueryTerms` a question prepared once: its weighted terms, its
character bigrams and its numbers, with coverage measures over any text.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from policyqa.corpus.text import QUESTION_CHARS, char_bigrams, query_bigrams
from policyqa.index.base import TermStatistics
from policyqa.index.tokenizer import ChineseTokenizer

__all__ = ["QueryTerms", "TermStats"]

_NUM = re.compile(r"\d+(?:[.,]\d+)*")


class TermStats:
    """Inverse document frequencies of the index's BM25 vocabulary (chunks as documents).

    Unknown terms get the largest IDF (they are rare). Built lazily from the BM25 index's
    document frequencies (:meth:`~policyqa.index.bm25.BM25Index.term_statistics`); without a
    BM25 index (e.g. the Milvus backend) every term has IDF 1.
    """

    def __init__(self, bm25_index: TermStatistics | None = None) -> None:
        self._bm25 = bm25_index
        self._vocab: dict[str, int] | None = None
        self._idf: npt.NDArray[np.float64] | None = None
        self._max = 1.0
        self._lock = threading.Lock()

    def _load(self) -> None:
        with self._lock:
            if self._vocab is not None:
                return
            if self._bm25 is None:
                self._vocab, self._idf, self._max = {}, np.ones(0), 1.0
                return
            vocab, df_arr, n_rows = self._bm25.term_statistics()
            df = np.asarray(df_arr, dtype=np.float64)
            n = float(max(1, n_rows))
            idf = np.log(1.0 + (n - df + 0.5) / (df + 0.5))
            self._vocab = vocab
            self._idf = idf
            self._max = float(idf.max()) if idf.size else 1.0

    def idf(self, term: str) -> float:
        self._load()
        assert self._vocab is not None and self._idf is not None  # set by _load
        if not self._vocab:
            return 1.0
        i = self._vocab.get(term)
        if i is None or i >= self._idf.size:
            return self._max
        return float(self._idf[i])


@dataclass(slots=True)
class QueryTerms:
    """A query prepared for feature computation: weighted terms, bigrams and numbers."""

    text: str
    terms: dict[str, float]
    bigrams: set[str]
    numbers: set[str]

    @property
    def total_weight(self) -> float:
        return sum(self.terms.values()) or 1.0

    @classmethod
    def of(cls, query: str, tokenizer: ChineseTokenizer | None, stats: TermStats) -> QueryTerms:
        tokens = tokenizer.tokenize(query) if tokenizer is not None else []
        terms: dict[str, float] = {}
        for t in tokens:
            if all(ch in QUESTION_CHARS for ch in t):
                continue
            terms[t] = stats.idf(t)
        return cls(query, terms, query_bigrams(query), set(_NUM.findall(query)))

    def coverage(self, text: str) -> float:
        """IDF-weighted share of the query terms that occur in ``text`` (case-folded)."""
        if not self.terms:
            return 0.0
        low = text.lower()
        return sum(w for t, w in self.terms.items() if t in low) / self.total_weight

    def bigram_coverage(self, text: str) -> float:
        if not self.bigrams:
            return 0.0
        return len(self.bigrams & char_bigrams(text)) / len(self.bigrams)

    def number_match(self, text: str) -> float:
        """1 when every number of the query occurs in ``text`` (also when it has none)."""
        if not self.numbers:
            return 1.0
        found = set(_NUM.findall(text))
        return len(self.numbers & found) / len(self.numbers)
