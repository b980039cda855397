"""Answer-span candidates: clauses, trimmed and typed spans, offsets into the document."""

from __future__ import annotations

import math

import numpy as np
import pytest

from policyqa.answer.question import find_typed_spans
from policyqa.answer.spans import (
    MAX_CLAUSES,
    SPAN_FEATURES,
    SpanCandidate,
    _trim_start,
    clause_spans,
    expected_f1_choice,
    overlap_f1,
    span_candidates,
)
from policyqa.corpus.text import enclosing_sentence
from policyqa.retriever.base import Hit
from policyqa.retriever.terms import QueryTerms, TermStats

DOC = (
    "关于做好复工复产的通知\n"
    "一、在应急车辆通行方面，各地交通运输主管部门要加强高速公路路网保障工作，保障优先通行。"
    "二、力争一季度落地重点项目28个，总投资约120亿元。"
)


def _hit(start: int, end: int, rank: int = 1, doc_id: str = "d1") -> Hit:
    return Hit(
        chunk_id=f"{doc_id}-c{rank}",
        doc_id=doc_id,
        score=1.0 / rank,
        rank=rank,
        text=DOC[start:end],
        start=start,
        end=end,
        title="关于做好复工复产的通知",
    )


class _Store:
    def __init__(self, docs: dict[str, str]) -> None:
        self.docs = docs

    def get_document(self, doc_id: str) -> object:
        class _Doc:
            text = self.docs[doc_id]

        return _Doc()


def _qt(question: str) -> QueryTerms:
    return QueryTerms.of(question, None, TermStats(None))


def test_clause_spans_cut_after_marks_and_lines() -> None:
    text = "甲，乙；丙：丁。\n戊  己"
    assert [text[s:e] for s, e in clause_spans(text)] == ["甲，", "乙；", "丙：", "丁。", "戊", "己"]
    assert [text[s:e] for s, e in clause_spans(text, 2, 6)] == ["乙；", "丙："]


def test_trim_start_drops_the_words_shared_with_the_question() -> None:
    clause = "各地交通运输主管部门要加强高速公路路网保障工作，"
    bigrams = {"交通", "运输", "主管", "部门"}
    assert clause[_trim_start(clause, bigrams) :] == "加强高速公路路网保障工作，"
    assert _trim_start(clause, {"无关"}) == 0
    assert _trim_start("主管部门。", {"主管", "部门"}) == 0  # nothing would be left


def test_candidates_are_verbatim_and_may_run_past_the_passage() -> None:
    question = "在应急车辆通行方面，各地交通运输主管部门的措施是什么？"
    cut = DOC.index("保障优先")
    hit = _hit(DOC.index("一、"), cut)
    store = _Store({"d1": DOC})
    cands, x = span_candidates(
        question, _qt(question), [hit], lambda h: store.docs[h.doc_id], extend_chars=300
    )
    assert x.shape == (len(cands), len(SPAN_FEATURES))
    assert cands and all(c.doc_id == "d1" and c.hit_index == 0 for c in cands)
    texts = [DOC[c.start : c.end] for c in cands]
    assert "加强高速公路路网保障工作，" in texts  # trimmed
    assert any(c.end > hit.end for c in cands)  # runs on into the document text
    assert all(c.start < hit.end for c in cands)  # but starts inside the passage
    assert all(len(clause_spans(t)) <= MAX_CLAUSES for t in texts)
    assert not any(c.kind == "typed" for c in cands)  # not a typed question
    # by default, and without the document text, every span stays inside the passage
    for getter in (lambda h: store.docs[h.doc_id], lambda h: h.text):
        inside, _ = span_candidates(question, _qt(question), [hit], getter)
        assert inside and all(hit.start <= c.start and c.end <= hit.end for c in inside)


def test_spans_do_not_cross_a_line_break() -> None:
    question = "关于做好复工复产的通知有哪些内容？"
    hit = _hit(0, len(DOC))
    cands, _ = span_candidates(question, _qt(question), [hit], lambda h: DOC)
    assert cands and not any("\n" in DOC[c.start : c.end] for c in cands)


def test_typed_candidates_for_typed_questions() -> None:
    question = "一季度计划落地多少个重点项目？"
    hit = _hit(DOC.index("二、"), len(DOC))
    cands, x = span_candidates(question, _qt(question), [hit], lambda h: DOC, find_typed=find_typed_spans)
    typed = [DOC[c.start : c.end] for c in cands if c.kind == "typed"]
    assert "28个" in typed
    row = x[[DOC[c.start : c.end] for c in cands].index("28个")]
    assert row[SPAN_FEATURES.index("unit_match")] == 1.0
    assert row[SPAN_FEATURES.index("typed_typed_q")] == 1.0


def test_enclosing_sentence() -> None:
    s = DOC.index("加强")
    a, b = enclosing_sentence(DOC, s, s + 4)
    assert (
        DOC[a:b] == "一、在应急车辆通行方面，各地交通运输主管部门要加强高速公路路网保障工作，保障优先通行。"
    )
    e = DOC.index("28个") + 3
    a, b = enclosing_sentence(DOC, e - 3, e)
    assert DOC[a:b] == "二、力争一季度落地重点项目28个，总投资约120亿元。"


def _cand(hit_index: int, start: int, end: int, base: int = 0) -> SpanCandidate:
    return SpanCandidate(hit_index, "d", base + start, base + end, "clauses")


def test_dense_span_features_exact() -> None:
    from policyqa.answer.spans import DENSE_SPAN_FEATURES, dense_span_features

    text = "第一句话在这里。第二句话在这里。第三句话在这里。"
    hit = Hit(chunk_id="c", doc_id="d", score=1.0, rank=1, text=text, start=100, end=100 + len(text))
    sentences = [[(0, 8, 0.2), (8, 16, 0.9), (16, 24, 0.5)]]
    # a span from the second sentence into the third
    x = dense_span_features([_cand(0, 10, 20, base=100)], [hit], sentences)
    row = dict(zip(DENSE_SPAN_FEATURES, x[0].tolist(), strict=True))
    assert row == pytest.approx(
        {
            "sent_sim_start": 0.9,
            "sent_sim_max": 0.9,
            "sent_sim_prev": 0.2,
            "sent_rel_start": 0.0,
            "sent_rel_max": 0.0,
            "sent_rel_prev": -0.7,
            "sent_sim_rank": 0.0,
            "sent_rel_lead": 0.0,
        }
    )
    # the third sentence alone: one sentence is more similar
    x = dense_span_features([_cand(0, 16, 24, base=100)], [hit], sentences)
    assert x[0].tolist() == pytest.approx([0.5, 0.5, 0.9, -0.4, -0.4, 0.0, math.log1p(1), 0.0])
    # no sentences at all: zeros
    assert not dense_span_features([_cand(0, 0, 8, base=100)], [hit], [[]]).any()


def test_reader_span_features_exact() -> None:
    from policyqa.answer.reader import CharLogits
    from policyqa.answer.spans import READER_SPAN_FEATURES, reader_span_features

    text = "落地项目28个，投资。"
    hit = Hit(chunk_id="c", doc_id="d", score=1.0, rank=1, text=text, start=50, end=50 + len(text))
    start = np.full(len(text), -1.0, dtype=np.float32)
    end = np.full(len(text), -2.0, dtype=np.float32)
    start[4] = 3.0  # "2"
    end[6] = 4.0  # "个"
    logits = [CharLogits(start, end, 1.5)]
    # the span "28个，" ends with a comma: its end logit is read at "个"
    x = reader_span_features([_cand(0, 4, 8, base=50)], [hit], logits)
    row = dict(zip(READER_SPAN_FEATURES, x[0].tolist(), strict=True))
    assert row == pytest.approx(
        {
            "reader_start": 3.0,
            "reader_end": 4.0,
            "reader_vs_null": 5.5,
            "reader_rel_start": 0.0,
            "reader_rel_end": 0.0,
            "reader_rel_span": 0.0,
        }
    )
    # a span outside the passage and a character no token covers read the floor (-20)
    start[0] = -np.inf
    x = reader_span_features([_cand(0, 0, 2, base=50), _cand(0, 30, 40, base=50)], [hit], logits)
    assert x[0, 0] == -20.0 and x[1, :2].tolist() == [-20.0, -20.0]


def test_overlap_f1_is_positional_and_per_document() -> None:
    got = overlap_f1([("a", 0, 10), ("a", 5, 10), ("b", 0, 10), ("a", 20, 30)])
    want = np.array(
        [
            [1.0, 10 / 15, 0.0, 0.0],
            [10 / 15, 1.0, 0.0, 0.0],
            [0.0, 0.0, 1.0, 0.0],
            [0.0, 0.0, 0.0, 1.0],
        ]
    )
    np.testing.assert_allclose(got, want)
    assert overlap_f1([]).shape == (0, 0)
    with pytest.raises(ValueError, match="non-empty"):
        overlap_f1([("a", 3, 3)])


def test_expected_f1_choice_prefers_the_span_the_mass_agrees_on() -> None:
    # the best-scored span stands alone; three slightly lower ones overlap one another
    positions = [("a", 0, 4), ("a", 10, 20), ("a", 12, 20), ("a", 10, 18)]
    scores = np.array([1.0, 0.9, 0.9, 0.9])
    assert expected_f1_choice(scores, positions, 1.0) == 1  # the span central to the three
    assert expected_f1_choice(scores, positions, 0.001) == 0  # a cold softmax is the argmax
    with pytest.raises(ValueError, match="positive"):
        expected_f1_choice(scores, positions, 0.0)
    with pytest.raises(ValueError, match="one position per score"):
        expected_f1_choice(scores, positions[:2], 1.0)
