"""POST /ask: extracted answers that cite their source verbatim, follow-ups, and bad input."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from policyqa.qa import QAPipeline
from policyqa.service import QAService
from tests.api.conftest import assert_error


def test_answer_is_verbatim_and_cited(client: TestClient) -> None:
    r = client.post("/ask", json={"question": "中小微企业稳岗返还比例最高是多少？", "top_k": 3})
    assert r.status_code == 200, r.text
    a = r.json()
    assert not a["no_answer"] and a["answer"]
    doc = client.get(f"/documents/{a['doc_id']}").json()
    assert doc["text"][a["start"] : a["end"]] == a["answer"]
    assert doc["text"][a["sentence_start"] : a["sentence_end"]] == a["sentence"]
    assert 0.0 <= a["confidence"] <= 1.0
    assert a["confidence_label"] in {"high", "medium", "low"}
    numbers = [c["number"] for c in a["citations"]]
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) <= 3
    holder = [c for c in a["citations"] if c["holds_answer"]]
    assert len(holder) == 1 and holder[0]["number"] == a["citation"]
    assert (
        holder[0]["chunk_id"] == a["chunk_id"]
        and holder[0]["start"] <= a["start"] < a["end"] <= holder[0]["end"]
    )
    assert holder[0]["title"] == doc["title"] and holder[0]["issuer"] == doc["issuer"]


def test_same_answer_as_the_answer_module(client: TestClient, service: QAService) -> None:
    question = "小规模纳税人增值税怎么减免？"
    body = client.post("/ask", json={"question": question, "top_k": 4}).json()
    with service.index() as index:
        expected = QAPipeline(index, service.settings).ask(question, top_k=4)
    assert body["answer"] == expected.text and body["no_answer"] == expected.no_answer
    assert body["confidence"] == pytest.approx(expected.confidence)
    assert [c["chunk_id"] for c in body["citations"]] == [c.chunk_id for c in expected.citations]


def test_no_passages_means_no_answer(client: TestClient) -> None:
    a = client.post("/ask", json={"question": "稳岗返还比例？", "filters": {"doc_ids": ["missing"]}}).json()
    assert a["no_answer"] is True and a["answer"] == "" and a["start"] is None
    assert a["confidence_label"] == "none" and a["citations"] == []


def test_follow_up_is_asked_in_context(client: TestClient) -> None:
    first = "中小微企业稳岗返还比例最高是多少？"
    a = client.post("/ask", json={"question": "大型企业呢？", "history": [first]}).json()
    assert a["question"] == "大型企业呢？"
    assert a["searched_as"] == f"{first} 大型企业呢？"
    alone = client.post("/ask", json={"question": "大型企业呢？"}).json()
    assert alone["searched_as"] == "大型企业呢？"
    new_topic = client.post(
        "/ask", json={"question": "增值税小规模纳税人有什么优惠政策？", "history": [first]}
    ).json()
    assert new_topic["searched_as"] == "增值税小规模纳税人有什么优惠政策？"


def test_explain_lists_the_passages(client: TestClient) -> None:
    a = client.post("/ask", json={"question": "稳岗返还条件是什么？", "explain": True}).json()
    assert a["explanation"] and {"rank", "doc_id", "chunk_id", "scores", "ranks"} <= set(a["explanation"][0])
    assert client.post("/ask", json={"question": "稳岗返还条件是什么？"}).json()["explanation"] is None


@pytest.mark.parametrize("mode", ["bm25", "dense", "hybrid"])
def test_modes(client: TestClient, mode: str) -> None:
    """The answer's passages come from the retriever of the mode asked (not always hybrid)."""
    r = client.post("/ask", json={"question": "稳岗返还条件是什么？", "mode": mode, "explain": True})
    assert r.status_code == 200, r.text
    passages = r.json()["explanation"]
    assert passages
    signal = {"bm25": "bm25", "dense": "dense", "hybrid": "fused"}[mode]
    for p in passages:
        assert signal in p["scores"]
        assert ("fused" in p["scores"]) is (mode == "hybrid")


def test_question_over_the_limit_names_it(client: TestClient, service: QAService) -> None:
    limit = service.settings.max_query_chars
    body = assert_error(client.post("/ask", json={"question": "问" * (limit + 1)}), 422, str(limit))
    assert body["errors"][0]["loc"] == ["body", "question"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "question"),
        ({"question": "  "}, "question"),
        ({"question": ["稳岗"]}, "question"),
        ({"question": "稳岗", "top_k": 0}, "top_k"),
        ({"question": "税", "top_k": True}, "top_k"),
        ({"question": "稳岗", "top_k": 101}, "top_k"),
        ({"question": "稳岗", "mode": "magic"}, "mode"),
        ({"question": "稳岗", "history": "稳岗返还比例？"}, "history"),
        ({"question": "稳岗", "history": ["问"] * 11}, "history"),
        ({"question": "稳岗", "history": ["问" * 2001]}, "history"),
        ({"question": "稳岗", "explain": "maybe"}, "explain"),
        ({"question": "稳岗", "explain": 0}, "explain"),
        ({"question": "稳岗", "filters": {"date_to": "2024-02-30"}}, "date_to"),
        ({"question": "稳岗", "answer": "x"}, "answer"),
    ],
)
def test_bad_ask_requests_are_422(client: TestClient, payload: dict[str, Any], field: str) -> None:
    assert field in assert_error(client.post("/ask", json=payload), 422)["detail"]
