"""Lexical index: BM25 over jieba tokens, stored and scored by bm25s.

Two scoring variants:

``okapi`` (default)
    BM25 Okapi exactly as rank-bm25's ``BM25Okapi``: ``idf * tf * (k1 + 1) / (tf + k1 * (1 - b +
    b * dl / avgdl))`` with ``idf = log((N - n + 0.5) / (n + 0.5))``, where a negative idf (a term
    in more than half of the chunks) is replaced by ``epsilon`` times the mean idf (``epsilon``
    alone when that mean is not positive, which only happens in corpora of a few chunks, where
    rank-bm25 would score every match below zero). bm25s builds
    the sparse score matrix with its always-positive Lucene idf; each term's column is then
    rescaled to the Okapi idf (and the ``k1 + 1`` factor), so no information is lost.
``lucene``
    bm25s's Lucene variant, ``idf = log(1 + (N - n + 0.5) / (n + 0.5))``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import bm25s
import numpy as np
import numpy.typing as npt

__all__ = ["BM25Index"]

logger = logging.getLogger(__name__)

_FORMAT = 1
_METHODS = ("okapi", "lucene")


def top_rows(
    scores: npt.NDArray[np.float32], k: int, mask: npt.NDArray[np.bool_] | None = None
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """The ``k`` rows with the highest positive scores (ties by row), restricted to ``mask``."""
    if mask is not None:
        scores = np.where(mask, scores, np.float32(0))
    positive = np.flatnonzero(scores > 0)
    if positive.size == 0 or k <= 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
    cand = scores[positive]
    if positive.size > k:
        part = np.argpartition(-cand, k - 1)[:k]
        # keep every row tied with the k-th score so the tie-break is by row, not by luck
        kth = cand[part].min()
        part = np.flatnonzero(cand >= kth)
        positive, cand = positive[part], cand[part]
    order = np.lexsort((positive, -cand))[:k]
    return positive[order].astype(np.int64), cand[order].astype(np.float32)


class BM25Index:
    """A BM25 index over pre-tokenized chunks; rows are chunk positions ``0..n-1``."""

    def __init__(
        self, k1: float = 1.5, b: float = 0.75, method: str = "okapi", epsilon: float = 0.25
    ) -> None:
        if method not in _METHODS:
            raise ValueError(f"BM25 method must be one of {_METHODS}, got {method!r}")
        if k1 <= 0 or not 0 <= b <= 1:
            raise ValueError(f"BM25 needs k1 > 0 and 0 <= b <= 1, got k1={k1}, b={b}")
        self.k1 = k1
        self.b = b
        self.method = method
        self.epsilon = epsilon
        self._model: bm25s.BM25 | None = None
        self._n = 0

    @property
    def size(self) -> int:
        return self._n

    def build(self, corpus_tokens: Sequence[Sequence[str]], show_progress: bool = False) -> None:
        """Index the token lists; row ``i`` is ``corpus_tokens[i]``."""
        model = bm25s.BM25(
            k1=self.k1,
            b=self.b,
            method="robertson" if self.method == "okapi" else "lucene",
            idf_method="lucene",
        )
        self._n = len(corpus_tokens)
        if self._n == 0:
            self._model = None
            return
        # bm25s needs at least one token per document; an empty chunk gets a token no query has.
        docs = [list(toks) if toks else ["\x00"] for toks in corpus_tokens]
        model.index(docs, show_progress=show_progress)
        if self.method == "okapi":
            self._to_okapi(model)
        self._model = model

    def _to_okapi(self, model: bm25s.BM25) -> None:
        """Rescale each term's column from the Lucene idf to rank-bm25's Okapi idf × (k1 + 1)."""
        indptr = np.asarray(model.scores["indptr"], dtype=np.int64)
        df = np.diff(indptr).astype(np.float64)
        n = float(model.scores["num_docs"])
        lucene = np.log(1.0 + (n - df + 0.5) / (df + 0.5))
        okapi = np.log(n - df + 0.5) - np.log(df + 0.5)
        mean_idf = float(okapi.mean()) if okapi.size else 0.0
        # rank-bm25 floors negative idfs at epsilon * mean idf; in a tiny corpus that mean is itself
        # negative (every term is in "more than half" of one or two chunks), and rank-bm25 then
        # scores every match below zero. There the floor is epsilon, as if the mean idf were 1.
        okapi[okapi < 0] = self.epsilon * (mean_idf if mean_idf > 0 else 1.0)
        factor = np.divide(okapi * (self.k1 + 1.0), lucene, out=np.zeros_like(okapi), where=lucene > 0)
        data = np.asarray(model.scores["data"], dtype=np.float64) * np.repeat(factor, np.diff(indptr))
        model.scores["data"] = data.astype(model.scores["data"].dtype)

    def scores(self, query_tokens: Sequence[str]) -> npt.NDArray[np.float32]:
        """BM25 score of every row for the query (zeros when no query token is indexed)."""
        if self._model is None:
            return np.zeros(self._n, dtype=np.float32)
        known = [t for t in query_tokens if t in self._model.vocab_dict]
        if not known:
            return np.zeros(self._n, dtype=np.float32)
        ids = self._model.get_tokens_ids(known)
        raw = self._model.get_scores_from_ids(ids)
        return np.asarray(raw, dtype=np.float32)

    def top_k(
        self,
        query_tokens: Sequence[str],
        k: int,
        mask: npt.NDArray[np.bool_] | None = None,
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """Rows and scores of the ``k`` best rows with a positive score.

        ``mask`` (a boolean array over rows) restricts the candidates before the cut. Ties are
        broken by row number, so results are deterministic.
        """
        return top_rows(self.scores(query_tokens), k, mask)

    # -- persistence -------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        params: dict[str, Any] = {
            "format": _FORMAT,
            "k1": self.k1,
            "b": self.b,
            "method": self.method,
            "epsilon": self.epsilon,
            "n": self._n,
        }
        if self._model is not None:
            self._model.save(str(directory / "bm25s"))
        (directory / "params.json").write_text(json.dumps(params, indent=2), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path, mmap: bool = False) -> BM25Index:
        params_path = directory / "params.json"
        if not params_path.is_file():
            raise FileNotFoundError(f"no BM25 index in {directory} (params.json missing)")
        params = json.loads(params_path.read_text(encoding="utf-8"))
        if params.get("format") != _FORMAT:
            raise ValueError(
                f"BM25 index format {params.get('format')} in {directory} is not {_FORMAT}; rebuild the index"
            )
        index = cls(
            k1=float(params["k1"]),
            b=float(params["b"]),
            method=str(params["method"]),
            epsilon=float(params["epsilon"]),
        )
        index._n = int(params["n"])
        if index._n:
            index._model = bm25s.BM25.load(str(directory / "bm25s"), mmap=mmap)
        return index
