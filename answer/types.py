"""What the answer stage returns: an :class:`Answer` taken verbatim from a document, with its
character offsets and numbered :class:`Citation` s, or no answer (with the closest passages
still cited). :func:`verify_answer` is the mechanical check every answer passes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from policyqa.corpus.pages import page_label
from policyqa.retriever.base import Hit

__all__ = [
    "CONFIDENCE_BANDS",
    "SNIPPET_CHARS",
    "Answer",
    "AnswerType",
    "Citation",
    "CitationError",
    "ConfidenceBand",
    "citations_from_hits",
    "confidence_band",
    "no_answer",
    "verify_answer",
]

#: Characters of passage text a citation's snippet shows.
SNIPPET_CHARS = 160

AnswerType = Literal["sentence", "amount", "date", "organization", "place", "reader", "none"]

#: The confidence an answer is shown with: high (≥ 0.7), medium (≥ 0.4), low; none for no answer.
ConfidenceBand = Literal["high", "medium", "low", "none"]
CONFIDENCE_BANDS: tuple[ConfidenceBand, ...] = ("high", "medium", "low", "none")


def confidence_band(confidence: float, no_answer: bool) -> ConfidenceBand:
    """The band users see for an answer's confidence (API, chat page, and the calibration
    table of ``policyqa eval``, which says how often each band's answers are right)."""
    if no_answer:
        return "none"
    if confidence >= 0.7:
        return "high"
    if confidence >= 0.4:
        return "medium"
    return "low"


class CitationError(RuntimeError):
    """An answer's offsets do not reproduce its text in the source document."""


@dataclass(frozen=True, slots=True)
class Citation:
    """A numbered source of an answer: where a passage comes from and what it says.

    ``start``/``end`` are the passage's character offsets into the document text.
    """

    number: int
    doc_id: str
    chunk_id: str
    title: str
    issuer: str | None
    doc_number: str | None
    date: str | None
    heading: str
    snippet: str
    start: int
    end: int
    score: float
    source: str | None = None
    page: int | None = None  # the page the passage starts on, for paged sources

    def label(self) -> str:
        """``title · issuer · doc number · date · heading · 第 N 页`` with the parts that are known."""
        parts = [self.title or self.doc_id, self.issuer, self.doc_number, self.date, self.heading]
        return " · ".join(p for p in [*parts, page_label(self.page)] if p)

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "doc_id": self.doc_id,
            "chunk_id": self.chunk_id,
            "title": self.title,
            "issuer": self.issuer,
            "doc_number": self.doc_number,
            "date": self.date,
            "heading": self.heading,
            "snippet": self.snippet,
            "start": self.start,
            "end": self.end,
            "score": self.score,
            "source": self.source,
            "page": self.page,
        }


@dataclass(frozen=True, slots=True)
class Answer:
    """The answer to a question.

    ``text == document.text[start:end]`` for the document ``doc_id``; ``sentence`` (with
    ``sentence_start``/``sentence_end``) is the sentence that holds it (equal to ``text`` when
    the answer is a whole sentence). When ``no_answer`` is true, ``text`` is empty, the offsets
    are None and ``citations`` still lists the closest passages. ``citation`` is the number of
    the citation the answer comes from (None for no answer).
    """

    question: str
    text: str
    no_answer: bool
    confidence: float
    doc_id: str | None = None
    chunk_id: str | None = None
    start: int | None = None
    end: int | None = None
    sentence: str = ""
    sentence_start: int | None = None
    sentence_end: int | None = None
    answer_type: AnswerType = "sentence"
    citation: int | None = None
    citations: tuple[Citation, ...] = ()
    passages: tuple[Hit, ...] = ()
    timings_ms: dict[str, float] = field(default_factory=dict)

    def to_dict(self, explain: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "question": self.question,
            "answer": self.text,
            "no_answer": self.no_answer,
            "confidence": round(self.confidence, 4),
            "answer_type": self.answer_type,
            "doc_id": self.doc_id,
            "chunk_id": self.chunk_id,
            "start": self.start,
            "end": self.end,
            "sentence": self.sentence,
            "sentence_start": self.sentence_start,
            "sentence_end": self.sentence_end,
            "citation": self.citation,
            "citations": [c.to_dict() for c in self.citations],
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
        }
        if explain:
            out["passages"] = [
                {
                    "rank": h.rank,
                    "doc_id": h.doc_id,
                    "chunk_id": h.chunk_id,
                    "scores": dict(h.scores),
                    "ranks": dict(h.ranks),
                }
                for h in self.passages
            ]
        return out


def _snippet(text: str, focus: tuple[int, int] | None = None, width: int = SNIPPET_CHARS) -> str:
    if len(text) <= width:
        return text
    if focus is None:
        return text[:width] + "…"
    s, e = focus
    left = max(0, min(s - width // 4, len(text) - width))
    right = min(len(text), max(left + width, e))
    return ("…" if left else "") + text[left:right] + ("…" if right < len(text) else "")


def citations_from_hits(
    hits: Sequence[Hit], focus: dict[str, tuple[int, int]] | None = None
) -> list[Citation]:
    """Numbered citations (1, 2, …) of passages, in order. ``focus`` maps a chunk id to the
    part of its text (chunk-relative offsets) the snippet should show."""
    out: list[Citation] = []
    for i, h in enumerate(hits, start=1):
        out.append(
            Citation(
                number=i,
                doc_id=h.doc_id,
                chunk_id=h.chunk_id,
                title=h.title,
                issuer=h.issuer,
                doc_number=h.doc_number,
                date=h.date,
                heading=h.heading,
                snippet=_snippet(h.text, (focus or {}).get(h.chunk_id)),
                start=h.start,
                end=h.end,
                score=float(h.score),
                source=h.source,
                page=h.page,
            )
        )
    return out


def no_answer(
    question: str,
    hits: Sequence[Hit],
    confidence: float = 0.0,
    citations: Sequence[Citation] | None = None,
) -> Answer:
    """The "the passages do not answer this" result, still listing the closest passages
    (``citations``, default: those of ``hits`` with their openings as snippets)."""
    return Answer(
        question=question,
        text="",
        no_answer=True,
        confidence=confidence,
        answer_type="none",
        citations=tuple(citations_from_hits(hits) if citations is None else citations),
        passages=tuple(hits),
    )


def verify_answer(answer: Answer, document_text: str) -> None:
    """Raise :class:`CitationError` unless the answer's offsets reproduce it verbatim."""
    if answer.no_answer:
        return
    if answer.start is None or answer.end is None:
        raise CitationError("answer has no offsets")
    if document_text[answer.start : answer.end] != answer.text:
        raise CitationError(
            f"answer text does not equal document {answer.doc_id} [{answer.start}:{answer.end}]"
        )
    if (
        answer.sentence_start is not None
        and answer.sentence_end is not None
        and document_text[answer.sentence_start : answer.sentence_end] != answer.sentence
    ):
        raise CitationError(f"answer sentence does not equal document {answer.doc_id} text")


# --------------------------------------------------------------------------------------------
# question types and typed spans
