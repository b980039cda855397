"""Retrieval and answer metrics.

Retrieval metrics are computed by ``ir_measures`` (pytrec_eval underneath) from *rankings*: for
each query the list of item ids a system returned, best first. A ranking is turned into a run
with strictly decreasing scores, so the order the system chose is the order scored (pytrec_eval
would otherwise re-sort tied scores by document id, descending). A query a system returned
nothing for, or that is missing from the rankings, scores 0 on every measure.

What an "item" is depends on the level:

* **doc** (:func:`doc_ranking`): a document, ranked by its best chunk; later chunks of the same
  document are dropped (ncpqa style).
* **chunk** (:func:`chunk_ranking`): a chunk. A chunk is relevant when it contains a gold answer
  span of the gold document (``chunk.start <= span.start`` and ``span.end <= chunk.end``). Every
  query has one gold item, :data:`GOLD_CHUNK`: the first chunk that contains any of its reference
  spans takes that id, so a query is credited once however many overlapping chunks hold the
  answer, and the later ones count as non-relevant. A query without a span (a no-answer
  question) falls back to "a chunk of a gold document".

Answer metrics follow the SQuAD/CMRC conventions on normalised text (:func:`normalize_answer`):
exact match and character-level F1 (bag of characters, the best over the references) of the
answer span; ``contains``: a normalised reference occurs in the returned *snippet*, the
sentence(s) the system shows around its answer (its ``sentence``; the answer text itself when it
returns none), which is how ncpqa-style benchmarks define it ("answer contained in the returned
sentence/snippet"); ``contains_span``: the same test on the answer span alone. A no-answer
question scores 1 on all of them when the system abstains and 0 otherwise; an answerable question
the system abstains on scores 0. Note: the official CMRC 2018 script computes F1 from the longest
common substring rather than the bag of characters, so its F1 can be a little lower.
"""

from __future__ import annotations

import string
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import ir_measures
import numpy as np
from ir_measures import RR, R, nDCG

from policyqa.answer.types import CONFIDENCE_BANDS, confidence_band
from policyqa.retriever.base import Hit

__all__ = [
    "ANSWER_METRICS",
    "GOLD_CHUNK",
    "MEASURES",
    "RETRIEVAL_METRICS",
    "AnswerLike",
    "AnswerMetrics",
    "RetrievalMetrics",
    "RIGHT_F1",
    "answer_metrics",
    "calibration",
    "char_f1",
    "chunk_qrels",
    "chunk_ranking",
    "contains_answer",
    "doc_ranking",
    "exact_match",
    "first_relevant_rank",
    "latency_summary",
    "normalize_answer",
    "order_by_score",
    "ranking_to_run",
    "recall_curve",
    "retrieval_metrics",
]

#: The retrieval metrics reported, in table order, with the ir_measures measure behind each.
MEASURES: dict[str, Any] = {
    "ndcg@10": nDCG @ 10,
    "mrr@10": RR @ 10,
    "recall@1": R @ 1,
    "recall@5": R @ 5,
    "recall@20": R @ 20,
    "recall@100": R @ 100,
}
RETRIEVAL_METRICS: tuple[str, ...] = tuple(MEASURES)
ANSWER_METRICS: tuple[str, ...] = ("exact_match", "f1", "contains", "contains_span", "no_answer_accuracy")

#: The id of the one relevant item of a query at chunk level.
GOLD_CHUNK = "#gold"


# --------------------------------------------------------------------------------------------
# rankings


def order_by_score(scores: Mapping[str, float]) -> list[str]:
    """Item ids by descending score, ties broken by ascending id (deterministic)."""
    return [item for item, _ in sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))]


def ranking_to_run(rankings: Mapping[str, Sequence[str]]) -> dict[str, dict[str, float]]:
    """Rankings as an ir_measures run whose scores reproduce the ranking order exactly.

    A repeated item keeps its first (best) position.
    """
    run: dict[str, dict[str, float]] = {}
    for qid, ranking in rankings.items():
        scores: dict[str, float] = {}
        for item in ranking:
            if item not in scores:
                scores[item] = float(len(ranking) - len(scores))
        run[qid] = scores
    return run


def _by_rank(hits: Sequence[Hit]) -> list[Hit]:
    return sorted(hits, key=lambda h: h.rank)


def doc_ranking(hits: Sequence[Hit]) -> list[str]:
    """Document ids in the order of their best chunk."""
    seen: dict[str, None] = {}
    for hit in _by_rank(hits):
        seen.setdefault(hit.doc_id, None)
    return list(seen)


def chunk_ranking(
    hits: Sequence[Hit], spans: Sequence[tuple[str, int, int]], gold_docs: Iterable[str] = ()
) -> list[str]:
    """Chunk ids in rank order, the first chunk holding a gold span renamed :data:`GOLD_CHUNK`.

    :param spans: the query's gold answer spans ``(doc_id, start, end)``; any one counts.
    :param gold_docs: used only when ``spans`` is empty: then the first chunk of one of these
        documents is the gold item.
    """
    gold_set = set(gold_docs)
    ranking: list[str] = []
    seen: set[str] = set()
    credited = False
    for hit in _by_rank(hits):
        if spans:
            relevant = any(d == hit.doc_id and hit.start <= s and e <= hit.end for d, s, e in spans)
        else:
            relevant = hit.doc_id in gold_set
        item = hit.chunk_id
        if relevant and not credited:
            item, credited = GOLD_CHUNK, True
        if item in seen:
            continue
        seen.add(item)
        ranking.append(item)
    return ranking


def chunk_qrels(query_ids: Iterable[str]) -> dict[str, dict[str, int]]:
    """Chunk-level qrels: every query has the one gold item :data:`GOLD_CHUNK`."""
    return {qid: {GOLD_CHUNK: 1} for qid in query_ids}


def first_relevant_rank(qrels: Mapping[str, int], ranking: Sequence[str]) -> int | None:
    """The 1-based rank of the first relevant (grade > 0) item, None when none was returned."""
    for i, item in enumerate(ranking, start=1):
        if qrels.get(item, 0) > 0:
            return i
    return None


# --------------------------------------------------------------------------------------------
# retrieval metrics


@dataclass(slots=True)
class RetrievalMetrics:
    """Mean values over all qrels queries, and the values of each query."""

    aggregate: dict[str, float]
    per_query: dict[str, dict[str, float]] = field(default_factory=dict)


def _compute(
    measures: Mapping[str, Any], qrels: Mapping[str, Mapping[str, int]], rankings: Mapping[str, Sequence[str]]
) -> dict[str, dict[str, float]]:
    """Per-query values of every measure, 0.0 for a query the run has nothing for."""
    per_query = {qid: dict.fromkeys(measures, 0.0) for qid in qrels}
    run = ranking_to_run({q: r for q, r in rankings.items() if q in qrels and r})
    if not run:
        return per_query
    name_of = {measure: name for name, measure in measures.items()}
    str_qrels = {q: {d: int(g) for d, g in docs.items()} for q, docs in qrels.items()}
    for metric in ir_measures.iter_calc(list(measures.values()), str_qrels, run):
        per_query[metric.query_id][name_of[metric.measure]] = float(metric.value)
    return per_query


def retrieval_metrics(
    qrels: Mapping[str, Mapping[str, int]],
    rankings: Mapping[str, Sequence[str]],
    metrics: Sequence[str] = RETRIEVAL_METRICS,
) -> RetrievalMetrics:
    """nDCG@10, MRR@10 and recall@k of rankings against qrels.

    :param qrels: ``{query id: {item id: grade}}``; every query in it is evaluated.
    :param rankings: ``{query id: [item id, ...]}`` best first; queries missing here score 0.
    :param metrics: names from :data:`RETRIEVAL_METRICS`.
    """
    unknown = [m for m in metrics if m not in MEASURES]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}: choose from {list(MEASURES)}")
    measures = {m: MEASURES[m] for m in metrics}
    per_query = _compute(measures, qrels, rankings)
    n = len(per_query)
    aggregate = {m: (sum(v[m] for v in per_query.values()) / n if n else 0.0) for m in metrics}
    return RetrievalMetrics(aggregate=aggregate, per_query=per_query)


def recall_curve(
    qrels: Mapping[str, Mapping[str, int]], rankings: Mapping[str, Sequence[str]], max_k: int = 100
) -> list[float]:
    """Mean recall@k for k = 1 … ``max_k`` (index 0 is recall@1)."""
    measures = {f"recall@{k}": R @ k for k in range(1, max_k + 1)}
    per_query = _compute(measures, qrels, rankings)
    n = len(per_query)
    return [sum(v[f"recall@{k}"] for v in per_query.values()) / n if n else 0.0 for k in range(1, max_k + 1)]


def latency_summary(latencies_ms: Sequence[float]) -> dict[str, float]:
    """p50 and p95 (linear interpolation) of latencies in milliseconds; 0.0 when there are none."""
    if not latencies_ms:
        return {"p50": 0.0, "p95": 0.0}
    arr = np.asarray(latencies_ms, dtype=float)
    return {"p50": float(np.percentile(arr, 50)), "p95": float(np.percentile(arr, 95))}


# --------------------------------------------------------------------------------------------
# answers

_ASCII_PUNCT = frozenset(string.punctuation)


def _halfwidth(ch: str) -> str:
    code = ord(ch)
    if code == 0x3000:  # ideographic space
        return " "
    if 0xFF01 <= code <= 0xFF5E:  # full-width ASCII forms
        return chr(code - 0xFEE0)
    return ch


def normalize_answer(text: str) -> str:
    """Full-width → half-width, lowercase, and drop whitespace and punctuation (ASCII and
    Unicode ``P*``, which covers ，。、《》“”（）…— and the like)."""
    out: list[str] = []
    for raw in text:
        ch = _halfwidth(raw).lower()
        if ch.isspace() or ch in _ASCII_PUNCT or unicodedata.category(ch).startswith("P"):
            continue
        out.append(ch)
    return "".join(out)


def exact_match(prediction: str, references: Sequence[str]) -> float:
    """1.0 when the normalised prediction equals a normalised reference."""
    pred = normalize_answer(prediction)
    return float(any(pred == normalize_answer(ref) for ref in references))


def _f1(pred: str, ref: str) -> float:
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision = common / len(pred)
    recall = common / len(ref)
    return 2 * precision * recall / (precision + recall)


def char_f1(prediction: str, references: Sequence[str]) -> float:
    """Character-level F1 (bag of characters) of the normalised texts, the best over references."""
    pred = normalize_answer(prediction)
    return max((_f1(pred, normalize_answer(ref)) for ref in references), default=0.0)


def contains_answer(prediction: str, references: Sequence[str]) -> float:
    """1.0 when a (non-empty) normalised reference occurs in the normalised prediction."""
    pred = normalize_answer(prediction)
    return float(any((ref := normalize_answer(r)) and ref in pred for r in references))


class AnswerLike(Protocol):
    """What an answer system returns for a question."""

    @property
    def text(self) -> str: ...
    @property
    def doc_id(self) -> str | None: ...
    @property
    def start(self) -> int | None: ...
    @property
    def end(self) -> int | None: ...
    @property
    def no_answer(self) -> bool: ...
    @property
    def sentence(self) -> str: ...
    @property
    def confidence(self) -> float: ...


@dataclass(slots=True)
class AnswerMetrics:
    """Means over the questions with references or a no-answer gold, and per-question values."""

    aggregate: dict[str, float]
    per_query: dict[str, dict[str, float]] = field(default_factory=dict)


def answer_metrics(
    predictions: Mapping[str, AnswerLike | None],
    answers: Mapping[str, Sequence[str]],
    no_answer: Iterable[str] = (),
) -> AnswerMetrics:
    """Exact match, F1, contains and no-answer accuracy of an answer system.

    :param predictions: the system's answer per question; a missing entry or None counts as an
        abstention.
    :param answers: the reference answers per question.
    :param no_answer: the questions whose gold is "no answer" (their references are ignored).

    The questions scored are those of ``no_answer`` plus those with at least one reference.
    ``no_answer_accuracy`` is the share of them where the system's abstain/answer decision is
    right.
    """
    unanswerable = set(no_answer)
    qids = [q for q, refs in answers.items() if q in unanswerable or refs]
    qids += sorted(q for q in unanswerable if q not in answers)
    per_query: dict[str, dict[str, float]] = {}
    for qid in qids:
        pred = predictions.get(qid)
        abstained = pred is None or pred.no_answer
        if qid in unanswerable:
            hit = float(abstained)
            per_query[qid] = dict.fromkeys(ANSWER_METRICS, hit)
            continue
        if pred is None or abstained:
            per_query[qid] = dict.fromkeys(ANSWER_METRICS, 0.0)
            continue
        refs = answers[qid]
        per_query[qid] = {
            "exact_match": exact_match(pred.text, refs),
            "f1": char_f1(pred.text, refs),
            "contains": contains_answer(pred.sentence or pred.text, refs),
            "contains_span": contains_answer(pred.text, refs),
            "no_answer_accuracy": 1.0,
        }
    n = len(per_query)
    aggregate = {m: (sum(v[m] for v in per_query.values()) / n if n else 0.0) for m in ANSWER_METRICS}
    return AnswerMetrics(aggregate=aggregate, per_query=per_query)


#: An answer counts as right in the calibration table when its character F1 reaches this.
RIGHT_F1 = 0.5


def calibration(
    predictions: Mapping[str, AnswerLike | None], scored: Mapping[str, Mapping[str, float]]
) -> dict[str, dict[str, float]]:
    """How often the answers of each confidence band (:func:`policyqa.answer.types.confidence_band`)
    are right: per band, the questions in it, their share, the share right (an answer: character
    F1 ≥ :data:`RIGHT_F1`; no answer: the question has none) and the mean F1 and contains.

    :param scored: :func:`answer_metrics`' per-question values (the questions it scored).
    """
    bands: dict[str, list[Mapping[str, float]]] = {b: [] for b in CONFIDENCE_BANDS}
    for qid, values in scored.items():
        pred = predictions.get(qid)
        bands["none" if pred is None else confidence_band(pred.confidence, pred.no_answer)].append(values)
    total = sum(len(v) for v in bands.values())
    out: dict[str, dict[str, float]] = {}
    for band, rows in bands.items():
        n = len(rows)
        right = (
            sum(r["no_answer_accuracy"] for r in rows)
            if band == "none"
            else sum(1.0 for r in rows if r["f1"] >= RIGHT_F1)
        )
        out[band] = {
            "questions": float(n),
            "share": n / total if total else 0.0,
            "right": right / n if n else 0.0,
            "f1": sum(r["f1"] for r in rows) / n if n else 0.0,
            "contains": sum(r["contains"] for r in rows) / n if n else 0.0,
        }
    return out
