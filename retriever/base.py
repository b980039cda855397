"""The retriever protocol shared by BM25, dense and hybrid search, and its result type."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any, Protocol, runtime_checkable

__all__ = ["Filters", "Hit", "Retriever"]


@dataclass(slots=True, frozen=True)
class Filters:
    """Metadata filters, applied before the top-k cut.

    ``issuer``/``doc_type``/``region`` match when the document's field contains the given text
    (so ``issuer="海关"`` matches 青岛海关); several values for one field are alternatives.
    ``date_from``/``date_to`` are inclusive; documents without a date never pass a date filter.
    """

    issuer: tuple[str, ...] = ()
    doc_type: tuple[str, ...] = ()
    region: tuple[str, ...] = ()
    date_from: date | None = None
    date_to: date | None = None
    doc_ids: tuple[str, ...] = ()

    def is_empty(self) -> bool:
        return not (
            self.issuer or self.doc_type or self.region or self.doc_ids or self.date_from or self.date_to
        )

    def matches(self, meta: dict[str, Any], doc_id: str) -> bool:
        """Whether a document with these metadata passes the filters."""
        if self.doc_ids and doc_id not in self.doc_ids:
            return False
        for name, wanted in (("issuer", self.issuer), ("doc_type", self.doc_type), ("region", self.region)):
            if wanted:
                value = meta.get(name) or ""
                if not any(w in value for w in wanted):
                    return False
        if self.date_from or self.date_to:
            raw = meta.get("date")
            if not raw:
                return False
            try:
                d = date.fromisoformat(str(raw)[:10])
            except ValueError:
                return False
            if self.date_from and d < self.date_from:
                return False
            if self.date_to and d > self.date_to:
                return False
        return True


@dataclass(slots=True, frozen=True)
class Hit:
    """One ranked passage with everything needed to cite it.

    ``start``/``end`` are character offsets into the document text. ``scores`` holds the score
    breakdown of every stage that saw the passage (``bm25``, ``dense``, ``fused``, ``rerank``) and
    ``ranks`` the 1-based rank it had in each.
    """

    chunk_id: str
    doc_id: str
    score: float
    rank: int
    text: str
    start: int
    end: int
    heading: str = ""
    title: str = ""
    doc_number: str | None = None
    issuer: str | None = None
    date: str | None = None
    doc_type: str | None = None
    region: str | None = None
    source: str | None = None
    page: int | None = None  # the page the passage starts on, for paged sources (PDF, scans, OFD)
    scores: dict[str, float] = field(default_factory=dict)
    ranks: dict[str, int] = field(default_factory=dict)

    def with_rank(self, rank: int, score: float | None = None) -> Hit:
        return replace(self, rank=rank, score=self.score if score is None else score)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "score": self.score,
            "doc_id": self.doc_id,
            "chunk_id": self.chunk_id,
            "text": self.text,
            "start": self.start,
            "end": self.end,
            "title": self.title,
            "doc_number": self.doc_number,
            "issuer": self.issuer,
            "date": self.date,
            "heading": self.heading,
            "doc_type": self.doc_type,
            "region": self.region,
            "source": self.source,
            "page": self.page,
            "scores": dict(self.scores),
            "ranks": dict(self.ranks),
        }


@runtime_checkable
class Retriever(Protocol):
    """What every retriever does: rank chunks for a query.

    ``search`` returns at most ``top_k`` hits sorted by descending score (ties broken by chunk
    id), ranks starting at 1. An empty query raises ``ValueError``.
    """

    name: str

    def search(self, query: str, top_k: int = 10, filters: Filters | None = None) -> list[Hit]: ...

    def batch_search(
        self, queries: Sequence[str], top_k: int = 10, filters: Filters | None = None
    ) -> list[list[Hit]]: ...
