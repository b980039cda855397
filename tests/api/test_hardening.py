"""Regression tests of the hardening issue's findings, each with the request that reproduced it:
no 5xx or hang for input the schema allows, no server path in a response, decompression bombs
refused, back-pressure on /ask (refused at once with 503 + Retry-After, /health and /search
unaffected), clear messages for malformed requests, ids that every URL can reach."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from policyqa.corpus.models import DocMeta, Document
from policyqa.eval.bench.abuse import write_docx_bomb
from policyqa.pipeline import add_documents, build_index
from policyqa.service import AskResult, QAService
from policyqa.settings import Settings
from tests.api.conftest import API_KEY, AUTH, assert_error
from tests.helpers import HashingEncoder

Factory = Callable[..., TestClient]


def _service(client: TestClient) -> QAService:
    service: QAService = client.app.state.service  # type: ignore[attr-defined]
    return service


# -- finding 2: every exception type is a JSON error; long questions are answered --------------
class _Panic(BaseException):
    """What a Rust panic in a tokenizer is to Python: not an Exception."""


def test_a_panic_in_the_answer_stage_is_a_json_500_and_the_server_goes_on(writable: Factory) -> None:
    client = writable()

    def panics(*args: Any, **kwargs: Any) -> AskResult:
        raise _Panic("stride must be strictly less than max_len")

    _service(client)._answer = panics  # type: ignore[method-assign]
    body = assert_error(client.post("/ask", json={"question": "稳岗返还比例？"}), 500, "reference")
    assert "stride" not in body["detail"] and "Panic" not in body["detail"]
    assert client.get("/health").status_code == 200
    assert client.post("/search", json={"query": "稳岗返还"}).status_code == 200


def test_questions_and_history_at_the_schema_limits_are_answered(client: TestClient) -> None:
    long_question = ("中小微企业稳岗返还比例最高是多少，" * 40)[:500]
    r = client.post("/ask", json={"question": long_question})
    assert r.status_code == 200, r.text
    r = client.post("/ask", json={"question": "那大型企业呢？", "history": ["稳岗返还" * 500] * 10})
    assert r.status_code == 200, r.text
    assert len(r.json()["searched_as"]) <= 500  # the follow-up's context is cut to the query limit


# -- finding 3: decompression bombs ----------------------------------------------------------------
def test_a_docx_bomb_upload_is_refused_quickly_and_loses_nothing(writable: Factory, tmp_path: Path) -> None:
    client = writable()
    before = client.get("/documents").json()["total"]
    bomb = write_docx_bomb(tmp_path / "bomb.docx", 190).read_bytes()
    t0 = time.perf_counter()
    r = client.post("/documents", files={"files": ("政策.docx", bomb)}, headers=AUTH)
    took = time.perf_counter() - t0
    body = assert_error(r, 422, "decompression bomb")
    assert body["files"][0]["status"] == "rejected" and took < 5.0
    assert client.get("/documents").json()["total"] == before


# -- finding 4: no server path in any response ------------------------------------------------------
def test_sources_never_show_a_server_path(tmp_path: Path) -> None:
    root = tmp_path / "served"
    docs_dir = tmp_path / "政策库"
    docs_dir.mkdir()
    (docs_dir / "稳岗.txt").write_text("关于稳岗返还的通知\n稳岗返还比例为百分之五十。", encoding="utf-8")
    s = Settings(
        cache_dir=root / "c",
        index_dir=root / "i",
        progress=False,
        api_key=API_KEY,
        build_demo_if_missing=False,
    )
    from policyqa.corpus.loaders import load_paths

    enc = HashingEncoder()
    build_index(load_paths(docs_dir).documents, s.index_dir, s, show_progress=False, encoder=enc)
    # an index written before sources were relative still holds an absolute path
    old = Document(
        id="old1",
        title="旧文件",
        text="旧文件\n补贴标准为一千元。",
        meta=DocMeta(source="/srv/data/旧文件.pdf"),
    )
    add_documents([old], s.index_dir, s, show_progress=False, encoder=enc)
    svc = QAService(s, encoder=enc)
    svc.warm_up()
    from policyqa.api.app import create_app

    with TestClient(create_app(s, svc, ui=False)) as client:
        listed = {d["id"]: d["source"] for d in client.get("/documents").json()["documents"]}
        assert sorted(listed.values()) == ["政策库/稳岗.txt", "旧文件.pdf"]
        hits = client.post("/search", json={"query": "稳岗返还 补贴标准"}).json()["hits"]
        assert {h["source"] for h in hits} <= {"政策库/稳岗.txt", "旧文件.pdf"}
        answer = client.post("/ask", json={"question": "补贴标准是多少？"}).json()
        for c in answer["citations"]:
            assert not str(c["source"]).startswith("/")
        assert client.get("/documents/old1").json()["source"] == "旧文件.pdf"
        for text in (client.get("/stats").text, client.get("/documents").text):
            assert str(tmp_path) not in text
    svc.close()


def test_errors_and_health_name_no_server_path(tmp_path: Path) -> None:
    from policyqa.api.app import create_app

    s = Settings(cache_dir=tmp_path / "c", index_dir=tmp_path / "missing-index", build_demo_if_missing=False)
    svc = QAService(s, encoder=HashingEncoder())
    with TestClient(create_app(s, svc, ui=False), raise_server_exceptions=False) as client:
        deadline = time.monotonic() + 10
        while svc.state.value not in ("failed",) and time.monotonic() < deadline:
            time.sleep(0.05)
        health = client.get("/health")
        assert health.status_code == 503 and "no index at" in health.json()["detail"]
        search = client.post("/search", json={"query": "稳岗"})
        assert search.status_code == 503
        for r in (health, search):
            assert str(tmp_path) not in r.text and "/tmp" not in r.text, r.text
    svc.close()


# -- finding 5: back-pressure on /ask ----------------------------------------------------------------
def _blocked(client: TestClient) -> tuple[threading.Event, threading.Event]:
    """Make the service's answers block until ``release`` is set; ``entered`` is set when one runs."""
    service = _service(client)
    real = service._answer
    release, entered = threading.Event(), threading.Event()

    def slow(*args: Any, **kwargs: Any) -> AskResult:
        entered.set()
        release.wait(20)
        return real(*args, **kwargs)

    service._answer = slow  # type: ignore[method-assign]
    return release, entered


def test_a_saturated_ask_queue_refuses_at_once_and_search_and_health_stay_fast(writable: Factory) -> None:
    client = writable(ask_concurrency=1, ask_queue_size=0)
    release, entered = _blocked(client)
    first: dict[str, Any] = {}
    worker = threading.Thread(
        target=lambda: first.update(r=client.post("/ask", json={"question": "稳岗返还比例？"}))
    )
    worker.start()
    assert entered.wait(10)
    t0 = time.perf_counter()
    busy = client.post("/ask", json={"question": "小规模纳税人增值税怎么减免？"})
    refused_in = time.perf_counter() - t0
    body = assert_error(busy, 503, "too many answer requests")
    assert body["error"] == "busy" and int(busy.headers["Retry-After"]) >= 1
    assert refused_in < 1.0
    t0 = time.perf_counter()
    assert client.get("/health").status_code == 200
    assert client.post("/search", json={"query": "稳岗返还"}).status_code == 200
    assert time.perf_counter() - t0 < 2.0
    stats = client.get("/stats").json()["answer_queue"]
    assert stats["running"] == 1 and stats["refused"] == 1 and stats["workers"] == 1
    release.set()
    worker.join(20)
    assert first["r"].status_code == 200 and first["r"].json()["answer"]


def test_an_answer_past_its_deadline_is_503(writable: Factory) -> None:
    client = writable(ask_deadline_s=0.3)
    release, _ = _blocked(client)
    t0 = time.perf_counter()
    r = client.post("/ask", json={"question": "稳岗返还比例？"})
    assert time.perf_counter() - t0 < 3.0
    assert assert_error(r, 503, "deadline")["error"] == "busy" and "Retry-After" in r.headers
    release.set()


# -- finding 6: clear messages for malformed requests -------------------------------------------------
def test_a_nul_in_a_query_is_said_in_words_not_as_a_regex(client: TestClient) -> None:
    body = assert_error(client.post("/search", json={"query": "稳岗\x00返还"}), 422, "NUL")
    assert "pattern" not in body["detail"] and "\\x00" not in body["detail"]
    body = assert_error(client.post("/ask", json={"question": "q", "history": ["a\x00"]}), 422, "NUL")


@pytest.mark.parametrize("path", ["/search", "/ask"])
def test_a_body_that_is_not_json_is_415(client: TestClient, path: str) -> None:
    field = "query" if path == "/search" else "question"
    r = client.post(path, content=f'{{"{field}": "稳岗"}}', headers={"Content-Type": "text/plain"})
    assert_error(r, 415, "application/json")
    # no Content-Type at all: the same (it used to be "Input should be a valid dictionary")
    r = client.post(path, content=f'{{"{field}": "稳岗"}}'.encode())
    assert "content-type" not in r.request.headers
    assert_error(r, 415, "(none)", "application/json")
    r = client.post(
        path, content=f'{{"{field}": "稳岗"}}', headers={"Content-Type": "application/json; charset=utf-8"}
    )
    assert r.status_code == 200


def test_deeply_nested_json_is_said_to_be_nested(client: TestClient) -> None:
    deep = '{"query": "稳岗", "filters": ' + "[" * 100_000 + "]" * 100_000 + "}"
    body = assert_error(
        client.post("/search", content=deep, headers={"Content-Type": "application/json"}), 400
    )
    assert "nested too deeply" in body["detail"] and "UTF-8" not in body["detail"]
    assert_error(
        client.post("/search", content=b'{"query": "\xff"}', headers={"Content-Type": "application/json"}),
        400,
    )


def test_upload_types_follow_the_schema(writable: Factory) -> None:
    client = writable()
    # every file of a type no loader reads: 415, with each file's reason
    r = client.post("/documents", files=[("files", ("a.gif", b"GIF89a"))], headers=AUTH)
    assert_error(r, 415, "unsupported file type .gif")
    # a file labelled with an accepted media type is read as that type, whatever its name
    note = "关于稳岗返还的通知\n稳岗返还比例为百分之五十。".encode()
    r = client.post("/documents", files=[("files", ("note", note, "text/plain"))], headers=AUTH)
    assert r.status_code == 201, r.text
    assert r.json()["files"][0]["name"] == "note.txt"
    # the schema names those media types
    schema = client.get("/openapi.json").json()
    upload = schema["paths"]["/documents"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert "application/pdf" in upload["encoding"]["files"]["contentType"]


@pytest.mark.parametrize("bad_id", ["a//b", "../x", "a/./b", "/a", "a/", "a\\b"])
def test_ids_no_url_can_reach_are_refused(writable: Factory, bad_id: str) -> None:
    client = writable()
    body = assert_error(
        client.post("/documents", json={"documents": [{"id": bad_id, "text": "正文。"}]}, headers=AUTH), 422
    )
    assert "pattern" not in body["detail"]


def test_path_like_ids_are_reachable(writable: Factory) -> None:
    client = writable()
    doc_id = "部门规章/市场监督管理总局/办法(2021-12-24)"
    r = client.post(
        "/documents", json={"documents": [{"id": doc_id, "text": "办法\n第一条 为了规范。"}]}, headers=AUTH
    )
    assert r.status_code == 201, r.text
    assert client.get(f"/documents/{doc_id}").json()["id"] == doc_id
    assert client.delete(f"/documents/{doc_id}", headers=AUTH).status_code == 200
    assert client.get(f"/documents/{doc_id}").status_code == 404


def test_uploads_of_a_corrupt_file_name_the_file_not_the_server_path(writable: Factory) -> None:
    client = writable()
    r = client.post("/documents", files=[("files", ("坏.pdf", b"%PDF-1.4 garbage"))], headers=AUTH)
    body = assert_error(r, 422)
    assert "/tmp" not in r.text and "policyqa-upload" not in r.text, body
