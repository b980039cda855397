"""Answer-span candidates: clauses, trimmed and typed spans, offsets into the document."""

from __future__ import annotations

from policyqa.retriever.answer import enclosing_sentence, find_typed_spans
from policyqa.retriever.base import Hit
from policyqa.retriever.rerank import QueryTerms, TermStats
from policyqa.retriever.spans import (
    MAX_CLAUSES,
    SPAN_FEATURES,
    _trim_start,
    clause_spans,
    span_candidates,
)

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
