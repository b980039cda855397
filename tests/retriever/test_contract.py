"""The contract every retriever passes: BM25, dense and hybrid (every fusion mode), over both
backends (the embedded index and Milvus Lite, ``backend_index``)."""

from __future__ import annotations

from datetime import date

import pytest

from policyqa.index.base import OpenIndex
from policyqa.retriever.base import Filters, Retriever
from policyqa.retriever.factory import retriever_for
from tests.helpers import fixture_documents, fixture_queries

CONFIGS = ["bm25", "dense", "hybrid-zscore", "hybrid-rrf", "hybrid-weighted"]


def _retriever(index: OpenIndex, name: str) -> Retriever:
    if name.startswith("hybrid-"):
        return retriever_for(index, "hybrid", fusion=name.split("-", 1)[1], candidate_depth=20)
    return retriever_for(index, name)


@pytest.fixture(params=CONFIGS)
def retriever(request: pytest.FixtureRequest, backend_index: OpenIndex) -> Retriever:
    return _retriever(backend_index, request.param)


def test_is_a_retriever(retriever: Retriever) -> None:
    assert isinstance(retriever, Retriever)


@pytest.mark.parametrize("top_k", [1, 3, 50])
def test_at_most_top_k_sorted_and_ranked(retriever: Retriever, top_k: int) -> None:
    hits = retriever.search("企业 税费 优惠 政策", top_k=top_k)
    assert 0 < len(hits) <= top_k
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert len({h.chunk_id for h in hits}) == len(hits)


def test_deterministic(retriever: Retriever) -> None:
    a = retriever.search("通知", top_k=20)
    b = retriever.search("通知", top_k=20)
    assert [(h.chunk_id, h.score) for h in a] == [(h.chunk_id, h.score) for h in b]


def test_offsets_point_into_the_document(retriever: Retriever) -> None:
    docs = {d.id: d for d in fixture_documents()}
    for h in retriever.search("稳岗返还比例", top_k=10):
        assert docs[h.doc_id].text[h.start : h.end] == h.text
        assert h.title == docs[h.doc_id].title


@pytest.mark.parametrize("bad", ["", "   ", "\n"])
def test_empty_query_is_rejected(retriever: Retriever, bad: str) -> None:
    with pytest.raises(ValueError, match="empty"):
        retriever.search(bad)


@pytest.mark.parametrize("bad_k", [0, -1])
def test_bad_top_k_is_rejected(retriever: Retriever, bad_k: int) -> None:
    with pytest.raises(ValueError, match="top_k"):
        retriever.search("通知", top_k=bad_k)


def test_batch_search_equals_search(retriever: Retriever) -> None:
    queries = [q for _, q, _ in fixture_queries()]
    batch = retriever.batch_search(queries, top_k=5)
    single = [retriever.search(q, top_k=5) for q in queries]
    assert [[h.chunk_id for h in hs] for hs in batch] == [[h.chunk_id for h in hs] for hs in single]


def test_filters_apply_before_the_cut(retriever: Retriever) -> None:
    hits = retriever.search("企业", top_k=3, filters=Filters(doc_ids=("d07",)))
    assert hits and {h.doc_id for h in hits} == {"d07"}
    hits = retriever.search("企业 税", top_k=2, filters=Filters(issuer=("人力资源",)))
    assert hits and {h.doc_id for h in hits} == {"d04"}
    assert retriever.search("企业", top_k=3, filters=Filters(issuer=("不存在的机关",))) == []


def test_date_filter(retriever: Retriever) -> None:
    f = Filters(date_from=date(2024, 1, 1), date_to=date(2024, 12, 31))
    hits = retriever.search("企业 项目 贸易", top_k=10, filters=f)
    assert {h.doc_id for h in hits} == {"d03", "d06"}  # the only 2024 documents
    for h in hits:
        assert h.date is not None and h.date >= "2024-01-01"


@pytest.mark.parametrize("config", ["bm25", "hybrid-zscore", "hybrid-rrf", "hybrid-weighted"])
def test_fixture_queries_find_their_document(backend_index: OpenIndex, config: str) -> None:
    r = _retriever(backend_index, config)
    for qid, query, gold in fixture_queries():
        top = [h.doc_id for h in r.search(query, top_k=3)]
        assert set(gold) & set(top), f"{config} {qid} {query}: {top}"


def test_traditional_query_finds_simplified_text(backend_index: OpenIndex) -> None:
    hits = retriever_for(backend_index, "bm25").search("青島海關 貿易便利化", top_k=2)
    assert hits[0].doc_id == "d03"


def test_hybrid_keeps_the_score_breakdown(backend_index: OpenIndex) -> None:
    hits = retriever_for(backend_index, "hybrid").search("稳岗返还比例", top_k=3)
    assert {"bm25", "dense", "fused"} <= set(hits[0].scores)
    assert "fused" in hits[0].ranks
