"""The query pipeline (QAPipeline): answers cite exactly, the mode is honoured, bad input is refused."""

from __future__ import annotations

import pytest

from policyqa.answer.selector import SpanSelector
from policyqa.index.embedded import EmbeddedIndex as Index
from policyqa.qa import QAPipeline, make_answerer, reranked_search
from policyqa.retriever.factory import retriever_for
from policyqa.retriever.rerank import NoReranker
from policyqa.settings import Settings
from tests.helpers import fixture_documents, fixture_queries


def test_ask_on_the_fixture_index_cites_exactly(fixture_index: Index) -> None:
    settings = fixture_index.settings.model_copy(update={"answer_min_confidence": 0.0})
    docs = {d.id: d for d in fixture_documents()}
    for _qid, question, _gold in fixture_queries():
        ans = QAPipeline(fixture_index, settings).ask(question, top_k=3, explain=True)
        assert not ans.no_answer
        assert ans.doc_id is not None and ans.start is not None and ans.end is not None
        text = docs[ans.doc_id].text
        assert text[ans.start : ans.end] == ans.text
        assert 1 <= len(ans.citations) <= 4
        for c in ans.citations:
            assert docs[c.doc_id].text[c.start : c.end].startswith(c.snippet.rstrip("…")[:20])
        for h in ans.passages:
            assert "rerank" in h.scores and "fused" in h.scores
        assert "retrieve_rerank" in ans.timings_ms
    ans = QAPipeline(fixture_index, settings).ask("青岛市南区一季度计划落地多少个重点项目？")
    assert ans.doc_id == "d06"
    assert "28个" in ans.text
    assert ans.to_dict()["answer"] == ans.text


def test_ask_rejects_bad_input(fixture_index: Index) -> None:
    with pytest.raises(ValueError):
        QAPipeline(fixture_index, fixture_index.settings).ask("   ")
    with pytest.raises(ValueError):
        QAPipeline(fixture_index, fixture_index.settings).ask("问题", top_k=0)


def test_ask_with_threshold_one_says_no_answer(fixture_index: Index) -> None:
    settings = fixture_index.settings.model_copy(update={"answer_min_confidence": 1.0})
    ans = QAPipeline(fixture_index, settings).ask("稳岗返还的比例是多少？", top_k=2)
    assert ans.no_answer and ans.citations


def test_reranked_search_keeps_the_tail(fixture_index: Index) -> None:
    hits = reranked_search(
        retriever_for(fixture_index, "hybrid"), "税收优惠", NoReranker(), candidates=2, top_k=5
    )
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
    plain = retriever_for(fixture_index, "hybrid").search("税收优惠", top_k=5)
    assert [h.chunk_id for h in hits] == [h.chunk_id for h in plain]


def test_make_answerer_default_is_the_selector(fixture_index: Index) -> None:
    assert isinstance(make_answerer(Settings(), fixture_index), SpanSelector)


@pytest.mark.parametrize(("mode", "signal"), [("bm25", "bm25"), ("dense", "dense"), ("hybrid", "fused")])
def test_the_search_mode_is_the_one_asked_for(fixture_index: Index, mode: str, signal: str) -> None:
    """Every passage an answer was looked for in comes from the retriever of the mode asked."""
    qa = QAPipeline(fixture_index, fixture_index.settings)
    ans = qa.ask("稳岗返还的比例是多少？", mode=mode, explain=True)
    assert ans.passages
    for h in ans.passages:
        assert signal in h.scores
        if mode != "hybrid":
            assert "fused" not in h.scores
    plain = retriever_for(fixture_index, mode).search("稳岗返还的比例是多少？", top_k=20)
    assert {h.chunk_id for h in ans.passages} <= {h.chunk_id for h in plain}
    with pytest.raises(ValueError, match="unknown search mode"):
        qa.ask("稳岗返还的比例是多少？", mode="fuzzy")
