"""Lexical index: BM25 over jieba tokens, in segments that can grow and shrink without a rebuild.

An index is a list of immutable **segments**, each holding the term-frequency postings of a run of
rows (chunks, or whole documents): per term, the rows that contain it and how often. Scores are
computed at query time from the postings and the index-wide statistics (number of rows, each
term's document frequency summed over the segments, the average row length), as Lucene does.
That is what makes updates cheap and exact at once:

* adding rows writes one small new segment (the old ones are reused as they are, hard-linked
  into the new index generation), yet every score afterwards equals a full rebuild's, because
  idf and the average length are never baked into stored numbers;
* deleting rows filters the postings with a vectorised mask (no re-tokenisation);
* a full build writes a segment per ``segment_rows`` rows, so building 1M chunks never holds one
  giant sort in memory.

bm25s, which earlier versions used, precomputes every score into its sparse matrix and cannot be
updated (bm25s issues #5, #22, #98); its query speed comes from summing column slices, which this
index matches by computing the same slices with one gather and a few vector operations per term.

Two scoring variants:

``okapi`` (default)
    BM25 Okapi exactly as rank-bm25's ``BM25Okapi``: ``idf * tf * (k1 + 1) / (tf + k1 * (1 - b +
    b * dl / avgdl))`` with ``idf = log((N - n + 0.5) / (n + 0.5))``, where a negative idf (a term
    in more than half of the rows) is replaced by ``epsilon`` times the mean idf over the
    vocabulary (``epsilon`` alone when that mean is not positive, which only happens in corpora of
    a few rows, where rank-bm25 would score every match below zero). A query term that occurs
    twice counts twice, as in rank-bm25.
``lucene``
    bm25s's Lucene variant: ``idf * tf / (tf + k1 * (1 - b + b * dl / avgdl))`` with
    ``idf = log(1 + (N - n + 0.5) / (n + 0.5))``, which stays positive in any collection.

On disk an index is a directory: ``params.json`` (format, parameters, the segment list),
``vocab.json`` (the terms in id order), ``doc_len.npy`` (tokens per row) and one folder per
segment with ``indptr.npy``, ``rows.npy`` (int32) and ``tf.npy`` (uint16), loadable memory-mapped.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

__all__ = ["SEGMENT_ROWS", "BM25Appender", "BM25Index", "top_rows"]

logger = logging.getLogger(__name__)

_FORMAT = 2
_METHODS = ("okapi", "lucene")
#: Rows per segment of a full build (and the size a merge of small segments stops at).
SEGMENT_ROWS = 262_144
#: More segments than this after an update merges the small ones (those under SEGMENT_ROWS / 8).
MAX_SEGMENTS = 12
_TF_MAX = np.iinfo(np.uint16).max
#: Top-k pruning applies from this many rows and query postings on (below, scoring all is cheap).
PRUNE_MIN_ROWS = 50_000
PRUNE_MIN_POSTINGS = 100_000
#: Postings of the rarest query terms scored first, to bound the k-th score from below.
PRUNE_FIRST_POSTINGS = 100_000
#: Set aside the most common query terms while their weights stay below this share of theta0.
PRUNE_ASIDE_SHARE = 0.5
#: More candidate rows than this and the pruning gives up (scoring every posting is then cheaper).
PRUNE_MAX_CANDIDATES = 200_000

IntArray = npt.NDArray[np.int64]


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


@dataclass(slots=True)
class _Segment:
    """Postings of some rows: term ``t``'s rows are ``rows[indptr[t]:indptr[t + 1]]``.

    A segment covers the contiguous rows ``first … first + n_rows - 1``. ``indptr`` covers the
    terms known when the segment was written; later terms have no postings here. ``source`` is
    the segment's folder once it has been saved or loaded (its files are then hard-linked).
    """

    indptr: npt.NDArray[np.int64]
    rows: npt.NDArray[np.int32]
    tf: npt.NDArray[np.uint16]
    first: int
    n_rows: int
    source: Path | None = None

    @property
    def n_terms(self) -> int:
        return int(self.indptr.shape[0]) - 1


def _segment_from_postings(
    terms: npt.NDArray[np.int32] | npt.NDArray[np.int64],
    rows: npt.NDArray[np.int32],
    tf: npt.NDArray[np.uint16],
    first_row: int,
    n_rows: int,
    n_terms: int,
) -> _Segment:
    """A segment from (term, row, tf) postings in row order (rows ascending)."""
    order = np.argsort(terms, kind="stable")  # stable: rows stay ascending within a term
    indptr = np.zeros(n_terms + 1, dtype=np.int64)
    np.cumsum(np.bincount(terms, minlength=n_terms), out=indptr[1:])
    return _Segment(indptr=indptr, rows=rows[order], tf=tf[order], first=first_row, n_rows=n_rows)


class BM25Appender:
    """Adds rows to a :class:`BM25Index` one at a time (see :meth:`BM25Index.appender`).

    Each row's terms are counted at once and only (term id, row, count) triples are kept, in
    compact arrays, so appending a million chunks never holds their tokens as Python lists;
    every ``segment_rows`` rows become a segment.
    """

    def __init__(self, index: BM25Index) -> None:
        self._index = index
        self._first = index.size
        self._row = index.size
        self._terms: array[int] = array("i")
        self._rows: array[int] = array("i")
        self._tf: array[int] = array("H")
        self._lens: array[int] = array("i")
        self._all_lens: list[npt.NDArray[np.int32]] = []

    def add(self, tokens: Sequence[str]) -> None:
        vocab = self._index._vocab
        setdefault = vocab.setdefault
        counts = Counter(tokens)
        row = self._row
        for tok, c in counts.items():
            self._terms.append(setdefault(tok, len(vocab)))
            self._tf.append(c if c < _TF_MAX else _TF_MAX)
        self._rows.extend([row] * len(counts))
        self._lens.append(len(tokens))
        self._row += 1
        if self._row - self._first >= self._index.segment_rows:
            self._flush()

    def _flush(self) -> None:
        n = self._row - self._first
        if n == 0:
            return
        self._index._segments.append(
            _segment_from_postings(
                np.frombuffer(self._terms, dtype=np.int32),
                np.frombuffer(self._rows, dtype=np.int32),
                np.frombuffer(self._tf, dtype=np.uint16),
                self._first,
                n,
                len(self._index._vocab),
            )
        )
        self._all_lens.append(np.frombuffer(self._lens, dtype=np.int32).copy())
        self._terms, self._rows, self._tf, self._lens = array("i"), array("i"), array("H"), array("i")
        self._first = self._row

    def close(self) -> None:
        """Write the last segment and refresh the index-wide statistics."""
        self._flush()
        if self._all_lens:
            self._index._doc_len = np.concatenate([np.asarray(self._index._doc_len), *self._all_lens])
            self._all_lens = []
        self._index._refresh()

    def __enter__(self) -> BM25Appender:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()


def _merge(segments: Sequence[_Segment], n_terms: int) -> _Segment:
    """One segment with the postings of consecutive ``segments`` (rows stay as they are)."""
    terms = np.concatenate(
        [np.repeat(np.arange(s.n_terms, dtype=np.int64), np.diff(s.indptr)) for s in segments]
    )
    # consecutive segments in order: their postings come row range after row range, as
    # _segment_from_postings expects
    return _segment_from_postings(
        terms,
        np.concatenate([np.asarray(s.rows) for s in segments]),
        np.concatenate([np.asarray(s.tf) for s in segments]),
        segments[0].first,
        sum(s.n_rows for s in segments),
        n_terms,
    )


class BM25Index:
    """A BM25 index over pre-tokenized rows ``0..n-1`` (chunks or whole documents)."""

    def __init__(
        self,
        k1: float = 1.5,
        b: float = 0.75,
        method: str = "okapi",
        epsilon: float = 0.25,
        segment_rows: int = SEGMENT_ROWS,
    ) -> None:
        if method not in _METHODS:
            raise ValueError(f"BM25 method must be one of {_METHODS}, got {method!r}")
        if k1 <= 0 or not 0 <= b <= 1:
            raise ValueError(f"BM25 needs k1 > 0 and 0 <= b <= 1, got k1={k1}, b={b}")
        if segment_rows < 1:
            raise ValueError(f"segment_rows must be at least 1, got {segment_rows}")
        self.k1 = k1
        self.b = b
        self.method = method
        self.epsilon = epsilon
        self.segment_rows = segment_rows
        self._vocab: dict[str, int] = {}
        self._segments: list[_Segment] = []
        self._doc_len: npt.NDArray[np.int32] = np.zeros(0, dtype=np.int32)
        self._df: npt.NDArray[np.float64] = np.zeros(0, dtype=np.float64)
        self._knorm: npt.NDArray[np.float32] = np.zeros(0, dtype=np.float32)
        self._idf_floor = 0.0

    @property
    def size(self) -> int:
        return int(self._doc_len.shape[0])

    @property
    def n_segments(self) -> int:
        return len(self._segments)

    @property
    def vocabulary_size(self) -> int:
        return len(self._vocab)

    # -- building and updating ---------------------------------------------------------------
    def build(self, corpus_tokens: Iterable[Sequence[str]], show_progress: bool = False) -> None:
        """Index the token lists; row ``i`` is the ``i``-th list."""
        self._vocab = {}
        self._segments = []
        self._doc_len = np.zeros(0, dtype=np.int32)
        self._append(corpus_tokens)

    def extend(self, corpus_tokens: Iterable[Sequence[str]]) -> None:
        """Append rows ``size, size + 1, …`` as new segment(s); nothing already indexed is rewritten."""
        self._append(corpus_tokens)
        self.merge_small_segments()

    def merge_small_segments(self) -> None:
        """Merge the trailing run of small segments once there are more than ``MAX_SEGMENTS``."""
        if len(self._segments) > MAX_SEGMENTS:
            # merge the trailing run of small segments (the ones updates leave behind)
            start = len(self._segments)
            while start > 0 and self._segments[start - 1].n_rows < self.segment_rows // 8:
                start -= 1
            if len(self._segments) - start > 1:
                tail = self._segments[start:]
                self._segments = [*self._segments[:start], _merge(tail, len(self._vocab))]
                logger.debug("merged %d small BM25 segments", len(tail))

    def _append(self, corpus_tokens: Iterable[Sequence[str]]) -> None:
        with self.appender() as app:
            for toks in corpus_tokens:
                app.add(toks)

    def appender(self) -> BM25Appender:
        """Add rows one at a time: ``with index.appender() as app: app.add(tokens)``; the rows
        count once the block ends (then :meth:`merge_small_segments` may tidy up)."""
        return BM25Appender(self)

    def drop_rows(self, keep: npt.NDArray[np.bool_]) -> None:
        """Delete the rows where ``keep`` is false; the others are renumbered in order."""
        keep = np.asarray(keep, dtype=bool)
        if keep.shape != (self.size,):
            raise ValueError(f"keep mask has shape {keep.shape}, the index has {self.size} rows")
        before = np.concatenate([[0], np.cumsum(keep, dtype=np.int64)])  # kept rows before row i
        segments: list[_Segment] = []
        for seg in self._segments:
            first = int(before[seg.first])
            n_rows = int(before[seg.first + seg.n_rows]) - first
            if n_rows == 0:
                continue
            if first == seg.first and n_rows == seg.n_rows:
                segments.append(seg)  # untouched: same rows, same numbers
                continue
            if n_rows == seg.n_rows:  # nothing deleted inside: the rows only move down
                shifted = (np.asarray(seg.rows) - (seg.first - first)).astype(np.int32)
                segments.append(_Segment(seg.indptr, shifted, seg.tf, first, n_rows))
                continue
            rows = np.asarray(seg.rows)
            live = keep[rows]
            counts = np.concatenate([[0], np.cumsum(live, dtype=np.int64)])
            segments.append(
                _Segment(
                    indptr=counts[np.asarray(seg.indptr)],
                    rows=before[rows[live]].astype(np.int32),
                    tf=np.asarray(seg.tf)[live],
                    first=first,
                    n_rows=n_rows,
                )
            )
        self._segments = segments
        self._doc_len = np.asarray(self._doc_len)[keep]
        self._refresh()

    def _refresh(self) -> None:
        """Recompute the index-wide statistics after a change."""
        n_terms = len(self._vocab)
        df = np.zeros(n_terms, dtype=np.int64)
        for seg in self._segments:
            df[: seg.n_terms] += np.diff(seg.indptr)
        self._df = df.astype(np.float64)
        n = float(self.size)
        dl = np.asarray(self._doc_len, dtype=np.float64)
        avgdl = float(dl.mean()) if dl.size else 0.0
        if avgdl > 0:
            self._knorm = (self.k1 * (1.0 - self.b + self.b * dl / avgdl)).astype(np.float32)
        else:
            self._knorm = np.full(dl.shape, self.k1, dtype=np.float32)
        present = self._df[self._df > 0]
        if self.method == "okapi" and present.size:
            mean_idf = float((np.log(n - present + 0.5) - np.log(present + 0.5)).mean())
            # rank-bm25 floors negative idfs at epsilon * mean idf; in a tiny corpus that mean is
            # itself negative and rank-bm25 scores every match below zero: there the floor is epsilon.
            self._idf_floor = self.epsilon * (mean_idf if mean_idf > 0 else 1.0)
        else:
            self._idf_floor = 0.0

    def _idf(self, df: float) -> float:
        n = float(self.size)
        if self.method == "lucene":
            return float(np.log(1.0 + (n - df + 0.5) / (df + 0.5)))
        idf = float(np.log(n - df + 0.5) - np.log(df + 0.5))
        return idf if idf >= 0 else self._idf_floor

    def term_statistics(self) -> tuple[dict[str, int], npt.NDArray[np.float64], int]:
        """``(vocabulary, document frequencies by term id, number of rows)`` for feature code
        (e.g. the reranker's IDF weights); the arrays are the index's own, do not modify them."""
        return self._vocab, self._df, self.size

    # -- scoring -----------------------------------------------------------------------------
    def _weights(self, query_tokens: Sequence[str]) -> list[tuple[int, np.float32]]:
        """(term id, weight) of the indexed query terms, in query order; a repeated term weighs more."""
        scale = self.k1 + 1.0 if self.method == "okapi" else 1.0
        out: list[tuple[int, np.float32]] = []
        for term, count in Counter(query_tokens).items():
            tid = self._vocab.get(term)
            if tid is None or self._df[tid] <= 0:
                continue
            out.append((tid, np.float32(self._idf(float(self._df[tid])) * scale * count)))
        return out

    def _postings(self, tid: int) -> Iterator[tuple[npt.NDArray[np.int32], npt.NDArray[np.uint16]]]:
        for seg in self._segments:
            if tid < seg.n_terms:
                lo, hi = int(seg.indptr[tid]), int(seg.indptr[tid + 1])
                if lo < hi:
                    yield seg.rows[lo:hi], seg.tf[lo:hi]

    def scores(self, query_tokens: Sequence[str]) -> npt.NDArray[np.float32]:
        """BM25 score of every row for the query (zeros when no query token is indexed)."""
        acc = np.zeros(self.size, dtype=np.float32)
        for tid, weight in self._weights(query_tokens):
            self._accumulate(acc, tid, weight)
        return acc

    def score_rows(
        self, query_tokens: Sequence[str], rows: Sequence[int] | IntArray
    ) -> npt.NDArray[np.float32]:
        """The scores of ``rows`` only, equal to ``scores(query_tokens)[rows]`` bit for bit.

        Each term's postings are sorted by row, so a row's term frequency is a binary search away.
        """
        return self._score_rows(self._weights(query_tokens), rows)

    def _score_rows(
        self, weights: Sequence[tuple[int, np.float32]], rows: Sequence[int] | IntArray
    ) -> npt.NDArray[np.float32]:
        want = np.asarray(rows, dtype=np.int64)
        if want.size == 0:
            return np.zeros(0, dtype=np.float32)
        order = np.argsort(want, kind="stable")
        sorted_rows = want[order]
        acc = np.zeros(want.shape[0], dtype=np.float32)
        knorm = self._knorm[sorted_rows]
        for tid, weight in weights:
            self._add_sorted(acc, sorted_rows, knorm, tid, weight)
        out = np.empty_like(acc)
        out[order] = acc
        return out

    def _add_sorted(
        self,
        acc: npt.NDArray[np.float32],
        rows: IntArray,
        knorm: npt.NDArray[np.float32],
        tid: int,
        weight: np.float32,
    ) -> None:
        """Add term ``tid``'s contribution to ``acc`` for the sorted ``rows``."""
        for seg in self._segments:
            if tid >= seg.n_terms:
                continue
            lo, hi = int(seg.indptr[tid]), int(seg.indptr[tid + 1])
            if lo == hi:
                continue
            # only the rows inside this segment's range can be among its postings
            a, b = np.searchsorted(rows, (seg.first, seg.first + seg.n_rows))
            if a == b:
                continue
            posting_rows = seg.rows[lo:hi]
            part = rows[a:b]
            pos = np.searchsorted(posting_rows, part)
            pos[pos >= posting_rows.shape[0]] = 0
            hit = np.flatnonzero(posting_rows[pos] == part)
            if hit.size:
                tf = seg.tf[lo:hi][pos[hit]].astype(np.float32)
                acc[a + hit] += weight * tf / (tf + knorm[a + hit])

    def top_k(
        self,
        query_tokens: Sequence[str],
        k: int,
        mask: npt.NDArray[np.bool_] | None = None,
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """Rows and scores of the ``k`` best rows with a positive score.

        ``mask`` (a boolean array over rows) restricts the candidates before the cut. Ties are
        broken by row number, so results are deterministic. The result always equals
        ``top_rows(scores(query_tokens), k, mask)``; in large indexes it is found without
        scoring every posting of the query's most common terms (:meth:`_pruned_top_k`).
        """
        if k > 0 and self.size >= PRUNE_MIN_ROWS:
            found = self._pruned_top_k(query_tokens, k, mask)
            if found is not None:
                return found
        return top_rows(self.scores(query_tokens), k, mask)

    def _accumulate(self, acc: npt.NDArray[np.float32], tid: int, weight: np.float32) -> None:
        for rows, tf_raw in self._postings(tid):
            tf = tf_raw.astype(np.float32)
            acc[rows] += weight * tf / (tf + self._knorm[rows])

    def _pruned_top_k(
        self, query_tokens: Sequence[str], k: int, mask: npt.NDArray[np.bool_] | None
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]] | None:
        """MaxScore-style top k (Turtle & Flood, 1995), or None when it does not pay off.

        A term adds less than its weight to any row (``tf / (tf + norm) < 1``).

        1. The rarest terms (up to ``PRUNE_FIRST_POSTINGS`` postings) are scored; the exact scores
           of their best ``k`` rows give ``theta0``, a lower bound of the final ``k``-th score.
        2. The most common terms whose weights sum to less than ``PRUNE_ASIDE_SHARE * theta0``
           are set aside; the other terms are scored over all rows (the *partial* score).
        3. A row whose partial score is below ``theta0 - aside`` cannot reach ``theta0``, so only
           the rows above that threshold are candidates. They get the set-aside terms added
           (binary search in each term's postings) and the best ones their exact score
           (:meth:`score_rows`), which orders the answer.

        The answer is the unpruned one: every row left out scores below ``theta0`` and so below
        the ``k``-th answer. When the candidates would be too many (``PRUNE_MAX_CANDIDATES``)
        the method gives up and the caller scores every posting.
        """
        weights = self._weights(query_tokens)
        if len(weights) < 2:
            return None
        df = {tid: float(self._df[tid]) for tid, _ in weights}
        if sum(df.values()) < PRUNE_MIN_POSTINGS:
            return None
        rare_first = sorted(weights, key=lambda tw: (df[tw[0]], tw[0]))
        partial = np.zeros(self.size, dtype=np.float32)
        scored: set[int] = set()
        postings = 0.0
        for tid, w in rare_first:
            if scored and postings + df[tid] > PRUNE_FIRST_POSTINGS:
                break
            self._accumulate(partial, tid, w)
            scored.add(tid)
            postings += df[tid]
        masked = partial if mask is None else np.where(mask, partial, np.float32(0))
        first, _ = top_rows(masked, k)
        if first.size < k:
            return None
        theta0 = float(self._score_rows(weights, first).min())
        aside: list[tuple[int, np.float32]] = []
        budget = 0.0
        for tid, w in reversed(rare_first):
            if tid in scored or budget + float(w) >= PRUNE_ASIDE_SHARE * theta0:
                break
            aside.append((tid, w))
            budget += float(w)
        if not aside:
            return None
        aside_ids = {tid for tid, _ in aside}
        for tid, w in rare_first:
            if tid not in scored and tid not in aside_ids:
                self._accumulate(partial, tid, w)
        if mask is not None:
            partial = np.where(mask, partial, np.float32(0))
        # the best rows by the fuller partial score usually raise the lower bound a lot
        second, _ = top_rows(partial, k)
        if second.size == k:
            theta0 = max(theta0, float(self._score_rows(weights, second).min()))
        threshold = (theta0 - budget) * (1.0 - 1e-5)
        cand = np.flatnonzero(partial >= max(threshold, 1e-12))
        if cand.size > PRUNE_MAX_CANDIDATES or cand.size < k:
            return None
        approx = partial[cand].copy()
        knorm = self._knorm[cand]
        for tid, weight in aside:
            self._add_sorted(approx, cand, knorm, tid, weight)
        # the best by the approximate sum (rounding aside, the exact one), then exact scores
        keep = min(cand.size, 2 * k + 16)
        best = cand[np.argpartition(-approx, keep - 1)[:keep]] if cand.size > keep else cand
        best = np.sort(best)
        exact = self._score_rows(weights, best)
        order = np.lexsort((best, -exact))[:k]
        return best[order].astype(np.int64), exact[order].astype(np.float32)

    # -- persistence -------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        """Write the index to ``directory``; segments that are already on disk are hard-linked."""
        directory.mkdir(parents=True, exist_ok=True)
        names: list[dict[str, Any]] = []
        for i, seg in enumerate(self._segments):
            name = f"seg-{i:04d}"
            target = directory / name
            if target.exists():
                shutil.rmtree(target)
            target.mkdir()
            arrays = {"indptr.npy": seg.indptr, "rows.npy": seg.rows, "tf.npy": seg.tf}
            for fname, arr in arrays.items():
                src = seg.source / fname if seg.source is not None else None
                if src is not None and src.is_file() and _link(src, target / fname):
                    continue
                np.save(target / fname, np.ascontiguousarray(arr))
            names.append(
                {"name": name, "first": seg.first, "rows": seg.n_rows, "postings": int(seg.rows.shape[0])}
            )
        np.save(directory / "doc_len.npy", np.ascontiguousarray(self._doc_len, dtype=np.int32))
        (directory / "vocab.json").write_text(
            json.dumps(list(self._vocab), ensure_ascii=False), encoding="utf-8"
        )
        params: dict[str, Any] = {
            "format": _FORMAT,
            "k1": self.k1,
            "b": self.b,
            "method": self.method,
            "epsilon": self.epsilon,
            "segment_rows": self.segment_rows,
            "n": self.size,
            "vocabulary": len(self._vocab),
            "segments": names,
        }
        (directory / "params.json").write_text(json.dumps(params, indent=2), encoding="utf-8")
        for i, seg in enumerate(self._segments):
            seg.source = directory / names[i]["name"]

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
            segment_rows=int(params.get("segment_rows", SEGMENT_ROWS)),
        )
        mode: Literal["r"] | None = "r" if mmap else None
        terms = json.loads((directory / "vocab.json").read_text(encoding="utf-8"))
        index._vocab = {t: i for i, t in enumerate(terms)}
        index._doc_len = np.load(directory / "doc_len.npy")
        for entry in params["segments"]:
            folder = directory / entry["name"]
            index._segments.append(
                _Segment(
                    indptr=np.load(folder / "indptr.npy"),
                    # plain arrays over the mapping: slicing np.memmap objects is slow
                    rows=np.asarray(np.load(folder / "rows.npy", mmap_mode=mode)),
                    tf=np.asarray(np.load(folder / "tf.npy", mmap_mode=mode)),
                    first=int(entry["first"]),
                    n_rows=int(entry["rows"]),
                    source=folder,
                )
            )
        if index.size != int(params["n"]):
            raise ValueError(f"BM25 index in {directory} is damaged (row count); rebuild the index")
        index._refresh()
        return index


def _link(src: Path, dst: Path) -> bool:
    """Hard-link ``src`` to ``dst`` (segments are immutable); False where links are unsupported."""
    try:
        os.link(src, dst)
    except OSError:
        return False
    return True
