"""Helpers shared by the retrievers: query validation, filter masks, hits from rows."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from policyqa.index.store import ChunkStore
from policyqa.settings import QUERY_CHARS_LIMIT

from .base import Filters, Hit

__all__ = ["MaskCache", "check_query", "check_top_k", "hits_from_rows"]


def check_query(query: str) -> str:
    """The query stripped; ``ValueError`` when it is empty or over :data:`QUERY_CHARS_LIMIT`."""
    if not isinstance(query, str):
        raise TypeError(f"query must be a string, got {type(query).__name__}")
    q = query.strip()
    if not q:
        raise ValueError("query is empty: give a question or keywords")
    if len(q) > QUERY_CHARS_LIMIT:
        raise ValueError(f"query is {len(q)} characters long; the limit is {QUERY_CHARS_LIMIT}")
    return q


def check_top_k(top_k: int) -> int:
    """``top_k`` when it is a positive integer, else ``ValueError`` (the one check of every stage)."""
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
    return top_k


class MaskCache:
    """Row masks per filter set, computed once per index generation."""

    def __init__(self, store: ChunkStore) -> None:
        self._store = store
        self._get = lru_cache(maxsize=64)(self._compute)

    def _compute(self, filters: Filters) -> npt.NDArray[np.bool_]:
        return self._store.filter_mask(filters.matches)

    def mask(self, filters: Filters | None) -> npt.NDArray[np.bool_] | None:
        if filters is None or filters.is_empty():
            return None
        return self._get(filters)


def hits_from_rows(
    store: ChunkStore,
    rows: Sequence[int],
    scores: Sequence[float],
    stage: str,
    extra_scores: dict[int, dict[str, float]] | None = None,
    extra_ranks: dict[int, dict[str, int]] | None = None,
) -> list[Hit]:
    """Hits for ranked rows; ``stage`` names the score (``bm25``, ``dense``, ``fused``)."""
    records = store.records(list(rows))
    by_row = {r.row: r for r in records}
    hits: list[Hit] = []
    for rank, (row, score) in enumerate(zip(rows, scores, strict=True), start=1):
        rec = by_row.get(int(row))
        if rec is None:
            continue
        s = dict((extra_scores or {}).get(int(row), {}))
        s[stage] = float(score)
        r = dict((extra_ranks or {}).get(int(row), {}))
        r[stage] = rank
        c = rec.chunk
        hits.append(
            Hit(
                chunk_id=c.id,
                doc_id=c.doc_id,
                score=float(score),
                rank=rank,
                text=c.text,
                start=c.start,
                end=c.end,
                heading=c.heading,
                title=rec.title,
                doc_number=rec.meta.get("doc_number"),
                issuer=rec.meta.get("issuer"),
                date=rec.meta.get("date"),
                doc_type=rec.meta.get("doc_type"),
                region=rec.meta.get("region"),
                source=rec.meta.get("source"),
                page=rec.meta.get("page"),
                scores=s,
                ranks=r,
            )
        )
    return hits
