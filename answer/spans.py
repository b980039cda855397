"""Answer-span candidates and their features for the learned span selector.

An answer is rarely one whole sentence: it is the rest of a clause after the words the question
repeats (``各地交通运输主管部门要 | 加强高速公路路网保障工作…``), a run of clauses, a list after a
colon, or a number or date inside a clause. :func:`span_candidates` therefore enumerates, for
each of the top passages, every contiguous run of *clauses* (text cut after ，；：。！？ and line
breaks) that starts inside the passage and ends at most :data:`MAX_CLAUSES` clauses and
:data:`MAX_SPAN_CHARS` characters later, without crossing a line break; with ``extend_chars``
it may end in the document text after the passage (the offsets are into the document, so the
span stays verbatim). Two finer kinds are added:

* ``trimmed``: the run without the head of its first clause up to the last word it shares with
  the question (``…主管部门要`` dropped);
* ``typed``: a date, amount, organisation or place inside a clause, for questions that ask for
  one (何时 / 多少 / 哪个部门 / 哪里).

Each candidate gets a row of :data:`SPAN_FEATURES` (coverage of the question by the span and by
the text just before it, length, sentence and list structure, question type, passage rank); a
linear model over them (``answer/data/answer_spans.json``) picks the answer.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from policyqa.corpus.text import CLAUSE_MARKS, SENTENCE_STOPS, char_bigrams, clause_spans
from policyqa.retriever.base import Hit
from policyqa.retriever.terms import QueryTerms

from .question import expected_type, question_unit
from .reader import CharLogits

__all__ = [
    "DENSE_SPAN_FEATURES",
    "EXTEND_CHARS",
    "MAX_CLAUSES",
    "MAX_SPAN_CHARS",
    "READER_SPAN_FEATURES",
    "SPAN_FEATURES",
    "SpanCandidate",
    "dense_span_features",
    "expected_f1_choice",
    "overlap_f1",
    "question_kind",
    "reader_span_features",
    "source_text",
    "span_candidates",
]

#: At most this many clauses in one candidate span.
MAX_CLAUSES = 10
#: At most this many characters in one candidate span (a single longer clause is still kept).
MAX_SPAN_CHARS = 400
#: How far past the end of a passage a span may run by default (characters of the document
#: text). 0: every answer lies inside the passage it is cited from (what the API's citations
#: promise). On the ncpqa-dev test split, 300 gave F1 0.409 / contains 0.670, 0 gave 0.428 / 0.664.
EXTEND_CHARS = 0

_LIST_Q = re.compile(r"哪些|措施|如何|怎样|怎么|什么样|内容|要求|做法|举措|途径|方式|办法")
#: Connectives between the words a clause shares with the question and the answer.
_JOINERS = "要是为了将对在向从由把被以于和及与并的地得：:，,、"

KINDS = ("sentence", "amount", "date", "organization", "place")

SPAN_FEATURES: tuple[str, ...] = (
    "passage_rank",  # -log(rank of the passage the span starts in)
    "passage_score",  # that passage's rerank score relative to the best / worst top passage
    "cov_span",  # IDF-weighted question-term coverage of the span
    "bigram_span",  # question-bigram coverage of the span
    "cov_before",  # coverage of the sentence text before the span (same sentence)
    "cov_prev_clause",  # coverage of the clause just before the span
    "cov_prev_sentence",  # coverage of the sentence before the span's sentence
    "cov_context",  # coverage of the span's sentence prefix + the span
    "bigram_context",  # bigram coverage of the same
    "cov_first",  # coverage of the span's first clause
    "cov_last",  # coverage of the span's last clause
    "log_len",  # log(characters)
    "clauses",  # number of clauses (log)
    "sentences",  # sentence ends inside the span (log1p)
    "starts_sentence",  # the span starts a sentence
    "ends_sentence",  # the span ends a sentence
    "ends_colon",  # the span ends with a colon (an unanswered list head)
    "after_colon",  # the text right before the span ends with a colon
    "beyond_passage",  # share of the span outside its passage
    "trimmed",  # the first clause was cut after the words shared with the question
    "typed",  # the span is a typed expression (date, amount, body, place)
    "type_in_span",  # a typed question and the span holds such an expression
    "new_chars",  # share of the span's characters not in the question
    "q_typed",  # the question asks for a date/amount/body/place
    "q_list",  # the question asks for measures, ways, contents (哪些/措施/如何…)
    "log_len_typed_q",  # log_len for typed questions (they want short answers)
    "log_len_list_q",  # log_len for list questions (they want long ones)
    "typed_typed_q",  # typed span for a typed question
    "best_context",  # cov_context minus the best cov_context of the candidates
    "anchor_dist",  # clauses between the span and the passage's best-covered clause (log1p)
    "anchor_after",  # the span starts right after (or at) the best-covered clause
    "doc_pos",  # log1p(where the span starts in its document, characters)
    "title_like",  # the first clause is a line without closing punctuation (a title or heading)
    "cov_window_before",  # coverage of the 80 characters before the span
    "bigram_window_before",  # bigram coverage of the same
    "ntcov_context",  # coverage by the question terms not in the document title: the 80
    #                   characters before the span and its first 100
    "ntcov_span",  # the same over the span
    "ntcov_best",  # ntcov_context minus its best over the candidates
    "heading_before",  # a short line (a heading) ends right before the span
    "unit_match",  # a typed amount that ends with the unit the question names (多少个 → 个)
    "cov_clause",  # coverage of the whole clause the span starts in (a typed span's own clause)
)


@dataclass(frozen=True, slots=True)
class SpanCandidate:
    """A candidate answer: document offsets ``[start, end)`` and the passage it starts in."""

    hit_index: int
    doc_id: str
    start: int
    end: int
    kind: str  # "clauses" | "trimmed" | "typed" | "reader" (narrowed by a QA reader)


def question_kind(question: str) -> str:
    """The kind of answer the question asks for (see :func:`~policyqa.answer.question.expected_type`)."""
    return str(expected_type(question))


def source_text(hit: Hit, document_text: Callable[[Hit], str]) -> tuple[str, int]:
    """The text a hit's spans are cut from and its offset in the document: the document text
    (offset 0) when it holds the passage at the hit's offsets, else the passage itself."""
    text = document_text(hit)
    if text[hit.start : hit.end] == hit.text:
        return text, 0
    return hit.text, hit.start


def _ends_sentence(text: str, end: int) -> bool:
    if end >= len(text):
        return True
    if (
        text[end - 1] in SENTENCE_STOPS
        or text[end - 1] in "”’」』）)"
        and end >= 2
        and text[end - 2] in "。！？"
    ):
        return True
    nxt = text[end : end + 2]
    return nxt[:1] in ("\n", "\u3000") or len(nxt) == 2 and nxt.isspace()


def _trim_start(clause: str, bigrams: set[str]) -> int:
    """Where the answer starts inside a clause: after the last question bigram it repeats and
    the connectives that follow (0 when it repeats none, or nothing would be left)."""
    last = -1
    for i in range(len(clause) - 1):
        if clause[i : i + 2] in bigrams:
            last = i + 2
    if last < 0:
        return 0
    while last < len(clause) and clause[last] in _JOINERS:
        last += 1
    # keep at least two characters of content before the closing punctuation
    body = clause[last:].rstrip("，；：。！？,;:!?”’」』）) ")
    return last if len(body) >= 2 else 0


def span_candidates(
    question: str,
    qt: QueryTerms,
    hits: Sequence[Hit],
    document_text: Callable[[Hit], str],
    *,
    find_typed: Callable[[str, Any], list[tuple[int, int]]] | None = None,
    extend_chars: int = EXTEND_CHARS,
) -> tuple[list[SpanCandidate], npt.NDArray[np.float64]]:
    """Every candidate span of the passages ``hits`` (best first) and its feature row.

    ``document_text(hit)`` returns the full text of the hit's document (the hit's ``start`` and
    ``end`` are offsets into it); ``find_typed(text, kind)`` finds typed expressions; a span may
    run on ``extend_chars`` characters past the end of its passage. A span never crosses a line
    break (a heading or a new paragraph follows).
    """
    kind = question_kind(question)
    q_typed = 1.0 if kind != "sentence" else 0.0
    q_list = 1.0 if _LIST_Q.search(question) else 0.0
    unit = question_unit(question) if kind == "amount" else ""
    qset = set(question)
    bigrams = qt.bigrams
    best_score = max((h.score for h in hits), default=0.0)
    spread = best_score - min((h.score for h in hits), default=0.0)
    spread = spread if spread > 1e-12 else 1.0
    seen: set[tuple[str, int, int]] = set()
    cands: list[SpanCandidate] = []
    rows: list[list[float]] = []

    def cov(t: str) -> float:
        return qt.coverage(t)

    typed_pieces: dict[str, bool] = {}

    def has_typed(t: str) -> bool:
        if find_typed is None:
            return False
        if t not in typed_pieces:
            typed_pieces[t] = bool(find_typed(t, kind))
        return typed_pieces[t]

    def big(t: str) -> float:
        if not bigrams:
            return 0.0
        return len(bigrams & char_bigrams(t)) / len(bigrams)

    def passage(hi: int, h: Hit) -> None:
        text, base = source_text(h, document_text)
        title = (h.title or text[:60]).lower()
        nt = QueryTerms(qt.text, {t: w for t, w in qt.terms.items() if t not in title}, set(), set())
        if base:  # no (or a stale) document text: stay inside the passage
            lo, end_limit = 0, len(text)
        else:
            lo, end_limit = h.start, min(len(text), h.end + max(0, extend_chars))
        p_end = h.end - base
        cl = clause_spans(text, lo, end_limit)
        if not cl:
            return
        n = len(cl)
        ccov = [cov(text[s:e]) for s, e in cl]
        ends_sent = [_ends_sentence(text, e) for _s, e in cl]
        # the sentence start (clause index) of every clause
        sent_start: list[int] = []
        cur = 0
        for i in range(n):
            sent_start.append(cur)
            if ends_sent[i]:
                cur = i + 1
        in_passage = [i for i in range(n) if cl[i][0] < p_end]
        anchor = max(in_passage, key=lambda i: (ccov[i], -i)) if in_passage else 0
        rank_f = -math.log(hi + 1)
        score_f = (h.score - best_score) / spread

        typed_memo: dict[int, bool] = {}

        def clause_typed(k: int) -> bool:
            if k not in typed_memo:
                typed_memo[k] = has_typed(text[cl[k][0] : cl[k][1]])
            return typed_memo[k]

        def prev_sentence_cov(i: int) -> float:
            ss = sent_start[i]
            if ss == 0:
                return 0.0
            ps = sent_start[ss - 1]
            return cov(text[cl[ps][0] : cl[ss - 1][1]])

        def add(i: int, j: int, s: int, e: int, ckind: str) -> None:
            key = (h.doc_id, s + base, e + base)
            if key in seen or e <= s:
                return
            seen.add(key)
            span = text[s:e]
            ss = sent_start[i]
            before = text[cl[ss][0] : s] if cl[ss][0] < s else ""
            context = before + span
            length = e - s
            log_len = math.log(max(1, length))
            nsent = sum(1 for k in range(i, j) if ends_sent[k])
            chars = [ch for ch in span if not ch.isspace()]
            new = sum(ch not in qset for ch in chars) / len(chars) if chars else 0.0
            typed = 1.0 if ckind == "typed" else 0.0
            tin = 0.0
            if q_typed and find_typed is not None:
                # per clause (cached): typed expressions do not cross clause marks
                first = text[s : cl[i][1]] if e > cl[i][1] else span
                tin = (
                    1.0
                    if typed or has_typed(first) or any(clause_typed(k) for k in range(i + 1, j + 1))
                    else 0.0
                )
            outside = max(0, e - max(s, p_end)) / length
            dist = i - anchor
            window = text[max(lo, s - 80) : s]
            ntctx = text[max(lo, s - 80) : min(e, s + 100)]
            heading = 0.0
            if i > 0 and s == cl[i][0]:
                ps, pe = cl[i - 1]
                if pe - ps <= 25 and text[pe - 1] not in CLAUSE_MARKS:
                    heading = 1.0
            first_clause_end = cl[i][1]
            cands.append(SpanCandidate(hi, h.doc_id, s + base, e + base, ckind))
            rows.append(
                [
                    rank_f,
                    score_f,
                    cov(span),
                    big(span),
                    cov(before) if before else 0.0,
                    ccov[i - 1] if i > 0 else 0.0,
                    prev_sentence_cov(i),
                    cov(context),
                    big(context),
                    ccov[i] if s == cl[i][0] else cov(text[s : cl[i][1]]),
                    ccov[j] if e == cl[j][1] else cov(text[cl[j][0] : e]),
                    log_len,
                    math.log(j - i + 1),
                    math.log1p(nsent),
                    1.0 if s == cl[ss][0] else 0.0,
                    1.0 if e == cl[j][1] and ends_sent[j] else 0.0,
                    1.0 if span[-1] in "：:" else 0.0,
                    1.0 if before.rstrip()[-1:] in ("：", ":") else 0.0,
                    outside,
                    1.0 if ckind == "trimmed" else 0.0,
                    typed,
                    tin,
                    new,
                    q_typed,
                    q_list,
                    log_len * q_typed,
                    log_len * q_list,
                    typed * q_typed,
                    0.0,  # best_context, filled in below
                    math.log1p(abs(dist)),
                    1.0 if dist in (0, 1) else 0.0,
                    math.log1p(s + base),
                    1.0 if text[first_clause_end - 1] not in CLAUSE_MARKS else 0.0,
                    cov(window) if window else 0.0,
                    big(window) if window else 0.0,
                    nt.coverage(ntctx),
                    nt.coverage(span),
                    0.0,  # ntcov_best, filled in below
                    heading,
                    1.0 if typed and unit and span.rstrip("以上下内左右多").endswith(unit) else 0.0,
                    ccov[i],
                ]
            )

        for i in range(n):
            s0 = cl[i][0]
            if s0 >= p_end:
                break
            trim = _trim_start(text[s0 : cl[i][1]], bigrams)
            for j in range(i, min(n, i + MAX_CLAUSES)):
                if j > i and (cl[j][1] - s0 > MAX_SPAN_CHARS or "\n" in text[cl[j - 1][1] : cl[j][0]]):
                    break
                add(i, j, s0, cl[j][1], "clauses")
                if trim:
                    add(i, j, s0 + trim, cl[j][1], "trimmed")
            if q_typed and find_typed is not None:
                clause = text[s0 : cl[i][1]]
                for a, b in find_typed(clause, kind):
                    piece = clause[a:b]
                    if piece and piece not in question:
                        add(i, i, s0 + a, s0 + b, "typed")

    for hi, h in enumerate(hits):
        passage(hi, h)
    x = np.asarray(rows, dtype=np.float64).reshape(len(rows), len(SPAN_FEATURES))
    if len(rows):
        ctx = SPAN_FEATURES.index("cov_context")
        x[:, SPAN_FEATURES.index("best_context")] = x[:, ctx] - x[:, ctx].max()
        ntc = SPAN_FEATURES.index("ntcov_context")
        x[:, SPAN_FEATURES.index("ntcov_best")] = x[:, ntc] - x[:, ntc].max()
    return cands, x


# --------------------------------------------------------------------------------------------
# evidence features of the boosted span model: sentence similarity and reader logits

#: Features from the sentence similarities of the top passages (the question against each
#: sentence, as :class:`~policyqa.retriever.rerank.SentenceReranker` embeds them).
DENSE_SPAN_FEATURES: tuple[str, ...] = (
    "sent_sim_start",  # similarity of the sentence the span starts in
    "sent_sim_max",  # the best similarity among the sentences the span overlaps
    "sent_sim_prev",  # similarity of the sentence just before the span's first one
    "sent_rel_start",  # sent_sim_start minus the best sentence of all top passages
    "sent_rel_max",  # sent_sim_max minus the same
    "sent_rel_prev",  # sent_sim_prev minus the same
    "sent_sim_rank",  # log1p(sentences of the top passages more similar than sent_sim_max)
    "sent_rel_lead",  # the better of sent_sim_prev and sent_sim_start, minus the best
)

#: Features from a QA reader's per-character logits over the top passages
#: (:meth:`~policyqa.answer.reader.TransformersReader.char_logits`).
READER_SPAN_FEATURES: tuple[str, ...] = (
    "reader_start",  # start logit at the span's first character
    "reader_end",  # end logit at its last (closing punctuation skipped)
    "reader_vs_null",  # their sum minus the passage's no-answer score
    "reader_rel_start",  # reader_start minus the best start logit of all top passages
    "reader_rel_end",  # reader_end minus the best end logit
    "reader_rel_span",  # the sum minus the best start + best end
)

#: Floor of a logit feature (a span boundary no token covers).
_LOGIT_FLOOR = -20.0
_END_SKIP = frozenset("，。；：,;")


def dense_span_features(
    cands: Sequence[SpanCandidate],
    hits: Sequence[Hit],
    sentences: Sequence[Sequence[tuple[int, int, float]]],
) -> npt.NDArray[np.float64]:
    """Rows of :data:`DENSE_SPAN_FEATURES` for ``cands``; ``sentences[i]`` are the sentences of
    ``hits[i]`` as ``(start, end, similarity)`` with offsets into the hit's text."""
    x = np.zeros((len(cands), len(DENSE_SPAN_FEATURES)), dtype=np.float64)
    sims = sorted((s for per in sentences for _a, _b, s in per), reverse=True)
    if not sims:
        return x
    best = sims[0]
    desc = -np.asarray(sims)
    for row, c in enumerate(cands):
        base = hits[c.hit_index].start
        a, b = c.start - base, c.end - base
        own = sentences[c.hit_index] if c.hit_index < len(sentences) else ()
        holding = [s for sa, sb, s in own if sa <= a < sb]
        overlap = [s for sa, sb, s in own if sa < b and a < sb]
        before = [s for sa, sb, s in own if sb <= a + 1 and not sa <= a < sb]
        start = holding[0] if holding else overlap[0] if overlap else 0.0
        top = max(overlap, default=start)
        prev = before[-1] if before else 0.0
        rank = int(np.searchsorted(desc, -top - 1e-9, side="left"))
        x[row] = (
            start,
            top,
            prev,
            start - best,
            top - best,
            prev - best,
            math.log1p(rank),
            max(prev, start) - best,
        )
    return x


def reader_span_features(
    cands: Sequence[SpanCandidate], hits: Sequence[Hit], logits: Sequence[CharLogits]
) -> npt.NDArray[np.float64]:
    """Rows of :data:`READER_SPAN_FEATURES` for ``cands``; ``logits[i]`` is the
    :class:`~policyqa.answer.reader.CharLogits` of ``hits[i].text``."""
    x = np.zeros((len(cands), len(READER_SPAN_FEATURES)), dtype=np.float64)

    def floor(v: float) -> float:
        return max(_LOGIT_FLOOR, v) if math.isfinite(v) else _LOGIT_FLOOR

    best_s = floor(max((float(lg.start.max()) for lg in logits if len(lg.start)), default=-math.inf))
    best_e = floor(max((float(lg.end.max()) for lg in logits if len(lg.end)), default=-math.inf))
    for row, c in enumerate(cands):
        hit = hits[c.hit_index]
        lg = logits[c.hit_index] if c.hit_index < len(logits) else None
        a, b = c.start - hit.start, c.end - hit.start
        s_val = e_val = _LOGIT_FLOOR
        if lg is not None and 0 <= a < len(hit.text) and a < b <= len(hit.text):
            t = hit.text
            while a < b - 1 and t[a].isspace():
                a += 1
            e = b - 1
            while e > a and (t[e].isspace() or t[e] in _END_SKIP):
                e -= 1
            s_val, e_val = floor(float(lg.start[a])), floor(float(lg.end[e]))
        null = float(lg.null) if lg is not None and math.isfinite(lg.null) else 0.0
        x[row] = (
            s_val,
            e_val,
            s_val + e_val - null,
            s_val - best_s,
            e_val - best_e,
            s_val + e_val - best_s - best_e,
        )
    return x


def overlap_f1(positions: Sequence[tuple[str, int, int]]) -> npt.NDArray[np.float64]:
    """Pairwise character F1 of spans by position: ``2 · overlap / (len_i + len_j)`` for two
    spans of one document, 0 for spans of different documents (1 on the diagonal)."""
    if not positions:
        return np.zeros((0, 0), dtype=np.float64)
    ids = {d: k for k, d in enumerate(sorted({p[0] for p in positions}))}
    doc = np.array([ids[p[0]] for p in positions])
    start = np.array([p[1] for p in positions], dtype=np.float64)
    end = np.array([p[2] for p in positions], dtype=np.float64)
    if np.any(end <= start):
        raise ValueError("every span must be non-empty (end > start)")
    over = np.clip(
        np.minimum(end[:, None], end[None, :]) - np.maximum(start[:, None], start[None, :]), 0, None
    )
    over = np.where(doc[:, None] == doc[None, :], over, 0.0)
    length = end - start
    out: npt.NDArray[np.float64] = 2.0 * over / (length[:, None] + length[None, :])
    return out


def expected_f1_choice(
    scores: npt.NDArray[np.float64], positions: Sequence[tuple[str, int, int]], temperature: float
) -> int:
    """The index of the span with the highest expected F1 (:func:`overlap_f1`) against the
    candidates drawn from ``softmax(scores / temperature)``; ties go to the better-scored one."""
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if len(scores) != len(positions) or not len(scores):
        raise ValueError("one position per score, at least one")
    z = np.asarray(scores, dtype=np.float64) / temperature
    p = np.exp(z - z.max())
    p /= p.sum()
    gain = overlap_f1(positions) @ p
    order = np.lexsort((-np.asarray(scores), -np.round(gain, 12)))
    return int(order[0])
