"""A citation opens the original file at its page: ``GET /originals/{id}`` and the page on hits."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient

from tests.api.conftest import AUTH, assert_error
from tests.corpus.pdfs import lines_page, write_pdf

Factory = Callable[..., TestClient]


def _pdf(tmp_path: Path) -> bytes:
    path = tmp_path / "notice.pdf"
    write_pdf(
        path,
        [
            lines_page(
                ["关于稳岗返还的通知", "第一条 各地要落实援企稳岗政策，支持企业稳定就业岗位。", "— 1 —"]
            ),
            lines_page(["第二条 稳岗返还比例为企业上年度实际缴纳失业保险费的百分之五十。", "— 2 —"]),
        ],
    )
    return path.read_bytes()


def test_a_cited_page_opens_in_the_original(writable: Factory, tmp_path: Path) -> None:
    client = writable()
    data = _pdf(tmp_path)
    r = client.post(
        "/documents",
        files=[("files", ("稳岗返还通知.pdf", io.BytesIO(data), "application/pdf"))],
        headers=AUTH,
    )
    assert r.status_code == 201, r.text
    doc_id = r.json()["files"][0]["documents"][0]["id"]
    hits = client.post(
        "/search", json={"query": "稳岗返还比例 失业保险费", "mode": "bm25", "top_k": 1}
    ).json()["hits"]
    assert (hits[0]["doc_id"], hits[0]["page"]) == (doc_id, 2)
    r = client.get(f"/originals/{doc_id}")
    assert r.status_code == 200
    assert r.content == data
    assert r.headers["content-type"] == "application/pdf"
    assert (
        r.headers["content-disposition"]
        == "inline; filename*=UTF-8''%E7%A8%B3%E5%B2%97%E8%BF%94%E8%BF%98%E9%80%9A%E7%9F%A5.pdf"
    )
    assert r.headers["content-security-policy"] == "sandbox"
    assert r.headers["x-content-type-options"] == "nosniff"
    detail = client.get(f"/documents/{doc_id}").json()
    assert len(detail["extra"]["original"]) == 64 + len(".pdf")  # a content key, never a path


def test_no_original_no_file(writable: Factory) -> None:
    client = writable()
    assert_error(client.get("/originals/no-such-document"), 404)
    r = client.post(
        "/documents",
        json={"documents": [{"id": "json-doc", "text": "第一条 以JSON给出的文件。"}]},
        headers=AUTH,
    )
    assert r.status_code == 201, r.text
    assert_error(client.get("/originals/json-doc"), 404, "no original file is kept")


def test_other_types_are_downloads(writable: Factory) -> None:
    client = writable()
    html = (
        "<html><body><h1>关于稳岗返还的通知</h1><p>第一条 正文。</p><script>alert(1)</script></body></html>"
    )
    r = client.post(
        "/documents", files=[("files", ("notice.html", html.encode(), "text/html"))], headers=AUTH
    )
    assert r.status_code == 201, r.text
    doc_id = r.json()["files"][0]["documents"][0]["id"]
    r = client.get(f"/originals/{doc_id}")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["content-disposition"].startswith("attachment; ")
