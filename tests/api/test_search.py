"""POST /search: results equal to the retrievers' (what the CLI prints), and every bad input."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from policyqa.retriever.base import Filters
from policyqa.retriever.factory import retriever_for
from policyqa.service import QAService
from tests.api.conftest import assert_error


@pytest.mark.parametrize("mode", ["hybrid", "bm25", "dense"])
def test_search_equals_the_retriever(client: TestClient, service: QAService, mode: str) -> None:
    r = client.post("/search", json={"query": "稳岗返还的比例", "mode": mode, "top_k": 4})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["mode"] == mode and body["top_k"] == 4 and body["index_version"].startswith("gen-")
    with service.index() as index:
        expected = retriever_for(index, mode).search("稳岗返还的比例", top_k=4)
    assert [h["chunk_id"] for h in body["hits"]] == [h.chunk_id for h in expected]
    assert [h["score"] for h in body["hits"]] == pytest.approx([h.score for h in expected])
    assert [h["rank"] for h in body["hits"]] == list(range(1, len(expected) + 1))
    stage = "fused" if mode == "hybrid" else mode
    assert all(h["scores"][stage] == pytest.approx(h["score"]) for h in body["hits"])


def test_hits_cite_their_document_verbatim(client: TestClient) -> None:
    hits = client.post("/search", json={"query": "增值税 小规模纳税人", "top_k": 3}).json()["hits"]
    assert hits
    for h in hits:
        doc = client.get(f"/documents/{h['doc_id']}").json()
        assert doc["text"][h["start"] : h["end"]] == h["text"]
        assert h["title"] == doc["title"] and h["issuer"] == doc["issuer"] and h["date"] == doc["date"]


def test_query_is_trimmed(client: TestClient) -> None:
    assert client.post("/search", json={"query": "  稳岗返还  "}).json()["query"] == "稳岗返还"


def test_filters(client: TestClient) -> None:
    q = {"query": "企业 补贴 政策", "top_k": 20}
    everything = client.post("/search", json=q).json()["hits"]
    issuers = {h["issuer"] for h in everything}
    assert len(issuers) > 1
    only = client.post("/search", json={**q, "filters": {"issuer": ["人力资源"]}}).json()["hits"]
    assert only and all("人力资源" in h["issuer"] for h in only)
    dated = client.post(
        "/search", json={**q, "filters": {"date_from": "2023-01-01", "date_to": "2023-12-31"}}
    ).json()["hits"]
    assert dated and all("2023-01-01" <= h["date"] <= "2023-12-31" for h in dated)
    by_id = client.post("/search", json={**q, "filters": {"doc_ids": ["d01"]}}).json()["hits"]
    assert by_id and {h["doc_id"] for h in by_id} == {"d01"}
    none = client.post("/search", json={**q, "filters": {"doc_type": ["不存在的文种"]}}).json()
    assert none["hits"] == []


def test_filters_match_the_retriever_filters(client: TestClient, service: QAService) -> None:
    body = client.post(
        "/search", json={"query": "税费优惠", "top_k": 5, "filters": {"issuer": ["财政部"]}}
    ).json()
    with service.index() as index:
        expected = retriever_for(index, "hybrid").search(
            "税费优惠", top_k=5, filters=Filters(issuer=("财政部",))
        )
    assert [h["chunk_id"] for h in body["hits"]] == [h.chunk_id for h in expected]


def test_query_over_the_limit_names_the_limit(client: TestClient, service: QAService) -> None:
    limit = service.settings.max_query_chars
    assert client.post("/search", json={"query": "稳" * limit}).status_code == 200
    body = assert_error(client.post("/search", json={"query": "稳" * (limit + 1)}), 422, str(limit))
    assert body["errors"][0]["loc"] == ["body", "query"]
    assert body["errors"][0]["ctx"] == {"max_length": limit}


def test_top_k_over_the_limit_names_the_limit(client: TestClient, service: QAService) -> None:
    limit = service.settings.max_top_k
    assert_error(client.post("/search", json={"query": "税", "top_k": limit + 1}), 422, str(limit))


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "query"),
        ({"query": ""}, "query"),
        ({"query": "   \n\t"}, "query"),
        ({"query": 12}, "query"),
        ({"query": None}, "query"),
        ({"query": "税", "top_k": 0}, "top_k"),
        ({"query": "税", "top_k": -3}, "top_k"),
        ({"query": "税", "top_k": "ten"}, "top_k"),
        ({"query": "税", "top_k": 2.5}, "top_k"),
        ({"query": "税", "top_k": True}, "top_k"),
        ({"query": "税", "mode": "fuzzy"}, "mode"),
        ({"query": "税", "colour": "red"}, "colour"),
        ({"query": "税", "filters": {"issuer": "国务院"}}, "issuer"),
        ({"query": "税", "filters": {"issuer": [""]}}, "issuer"),
        ({"query": "税", "filters": {"issuer": ["x"] * 21}}, "issuer"),
        ({"query": "税", "filters": {"date_from": "2024-13-01"}}, "date_from"),
        ({"query": "税", "filters": {"date_from": "yesterday"}}, "date_from"),
        ({"query": "税", "filters": {"date_from": 0}}, "date_from"),
        ({"query": "\u3000\x1c\ufeff"}, "query"),
        ({"query": "税", "filters": {"date_from": "2024-02-01", "date_to": "2024-01-01"}}, "date_from"),
        ({"query": "税", "filters": {"region": ["北京"], "unknown": 1}}, "unknown"),
        ({"query": "税\x00"}, "query"),
    ],
)
def test_bad_search_requests_are_422(client: TestClient, payload: dict[str, Any], field: str) -> None:
    body = assert_error(client.post("/search", json=payload), 422)
    assert field in body["detail"]
    assert body["errors"] and all("input" not in e for e in body["errors"])


def test_lone_surrogate_is_422(client: TestClient) -> None:
    r = client.post(
        "/search", content=b'{"query": "\\ud800abc"}', headers={"content-type": "application/json"}
    )
    assert_error(r, 422)


@pytest.mark.parametrize(
    ("content", "ctype"),
    [
        (b"{not json", "application/json"),
        (b"[1, 2]", "application/json"),
        (b"", "application/json"),
    ],
)
def test_malformed_bodies_are_422(client: TestClient, content: bytes, ctype: str) -> None:
    assert_error(client.post("/search", content=content, headers={"content-type": ctype}), 422)


def test_a_form_body_is_415(client: TestClient) -> None:
    r = client.post(
        "/search", content=b"query=tax", headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert_error(r, 415, "application/json")


def test_undecodable_body_is_400(client: TestClient) -> None:
    r = client.post("/search", content=b"\xff\xfe\x00", headers={"content-type": "application/json"})
    assert_error(r, 400, "UTF-8")


def test_query_of_only_punctuation(client: TestClient) -> None:
    """Nothing to match is an empty result or a 422 with a reason, never a 500."""
    r = client.post("/search", json={"query": "？！。，", "mode": "bm25"})
    assert r.status_code in (200, 422), r.text
    if r.status_code == 422:
        assert_error(r, 422)


def test_wrong_method_is_json_405(client: TestClient) -> None:
    assert_error(client.get("/search"), 405, "GET")
