"""/documents: list, show, add (JSON and file uploads) and delete, with the API key."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import AUTH, assert_error

NOTICE = "国务院办公厅关于测试上传功能的通知\n国办发〔2024〕99号\n各省、自治区、直辖市人民政府：\n为检验上传功能，现将有关事项通知如下。一、上传的文件应当可以被检索到。\n国务院办公厅\n2024年3月1日"


# -- reading ----------------------------------------------------------------------------------
def test_list_documents_and_pages(client: TestClient) -> None:
    body = client.get("/documents").json()
    assert body["total"] == 10 and len(body["documents"]) == 10
    first = body["documents"][0]
    assert first["id"] == "d01" and first["chunks"] >= 1 and first["chars"] > 0 and first["issuer"]
    page = client.get("/documents", params={"offset": 3, "limit": 4}).json()
    assert [d["id"] for d in page["documents"]] == [d["id"] for d in body["documents"][3:7]]
    assert page["offset"] == 3 and page["limit"] == 4 and page["total"] == 10
    assert client.get("/documents", params={"offset": 50}).json()["documents"] == []


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 501},
        {"offset": -1},
        {"offset": 10_000_001},
        {"limit": "many"},
        {"offset": 1.5},
    ],
)
def test_bad_listing_parameters_are_422(client: TestClient, params: dict[str, Any]) -> None:
    assert_error(client.get("/documents", params=params), 422)


def test_get_document_with_chunks(client: TestClient) -> None:
    d = client.get("/documents/d04").json()
    assert d["id"] == "d04" and d["title"].startswith("人力资源社会保障部") and d["date"] == "2023-05-16"
    assert d["chunks"] and [c["ordinal"] for c in d["chunks"]] == list(range(len(d["chunks"])))
    for c in d["chunks"]:
        assert d["text"][c["start"] : c["end"]] == c["text"]


@pytest.mark.parametrize(
    "doc_id", ["nope", "d04x", "..%2F..%2Fetc%2Fpasswd", "a/b", "%E4%B8%8D%E5%AD%98%E5%9C%A8"]
)
def test_unknown_document_is_404(client: TestClient, doc_id: str) -> None:
    assert_error(client.get(f"/documents/{doc_id}"), 404, "no document")


# -- auth -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic dGVzdDp0ZXN0"},
        {"Authorization": AUTH["Authorization"].replace("Bearer ", "")},
        {"Authorization": AUTH["Authorization"] + "x"},
        {"X-API-Key": AUTH["Authorization"].split()[1]},
    ],
)
def test_writes_need_the_key(client: TestClient, headers: dict[str, str]) -> None:
    r = client.post("/documents", json={"documents": [{"text": NOTICE}]}, headers=headers)
    assert_error(r, 401)
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert_error(client.delete("/documents/d01", headers=headers), 401)
    assert client.get("/documents/d01").status_code == 200


def test_no_configured_key_refuses_all_writes(writable: Callable[..., TestClient]) -> None:
    c = writable(api_key=None)
    for headers in ({}, AUTH, {"Authorization": "Bearer "}):
        assert_error(
            c.post("/documents", json={"documents": [{"text": NOTICE}]}, headers=headers),
            403,
            "POLICYQA_API_KEY",
        )
        assert_error(c.delete("/documents/d01", headers=headers), 403)
    c = writable(api_key="")
    assert_error(c.delete("/documents/d01", headers={"Authorization": "Bearer "}), 403)
    assert c.get("/documents").json()["total"] == 10


def test_auth_comes_before_reading_the_body(client: TestClient) -> None:
    r = client.post("/documents", content=b"{broken", headers={"content-type": "application/json"})
    assert_error(r, 401)


# -- JSON documents ---------------------------------------------------------------------------
def test_add_json_documents_then_search_and_replace(writable: Callable[..., TestClient]) -> None:
    c = writable()
    r = c.post(
        "/documents",
        json={
            "documents": [
                {"text": NOTICE},
                {
                    "id": "mine-1",
                    "title": "自定标题",
                    "text": "海洋牧场建设补助标准为每亩三百元。",
                    "issuer": "青岛市海洋发展局",
                    "date": "2024-01-05",
                    "region": "青岛",
                },
            ]
        },
        headers=AUTH,
    )
    assert r.status_code == 201, r.text
    w = r.json()
    assert [f["status"] for f in w["files"]] == ["indexed", "indexed"]
    assert w["documents"] == 12 and len(w["added"]) == 2 and w["replaced"] == [] and w["removed"] == []
    notice_id = w["files"][0]["documents"][0]["id"]
    d = c.get(f"/documents/{notice_id}").json()
    # metadata the caller left out is read from the text
    assert d["doc_number"] == "国发〔2024〕99号" or d["doc_number"] == "国办发〔2024〕99号"
    assert d["issuer"] == "国务院办公厅" and d["date"] == "2024-03-01" and d["source"] == "api"
    mine = c.get("/documents/mine-1").json()
    assert (mine["issuer"], mine["date"], mine["region"], mine["title"]) == (
        "青岛市海洋发展局",
        "2024-01-05",
        "青岛",
        "自定标题",
    )
    hits = c.post("/search", json={"query": "海洋牧场补助标准", "top_k": 1}).json()["hits"]
    assert hits[0]["doc_id"] == "mine-1" and hits[0]["region"] == "青岛"
    assert c.get("/stats").json()["index_version"] == w["index_version"]
    again = c.post(
        "/documents",
        json={"documents": [{"id": "mine-1", "text": "海洋牧场建设补助标准调整为每亩五百元。"}]},
        headers=AUTH,
    ).json()
    assert again["replaced"] == ["mine-1"] and again["documents"] == 12
    assert again["files"][0]["documents"][0]["replaced"] is True
    assert "五百元" in c.get("/documents/mine-1").json()["text"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "documents"),
        ({"documents": []}, "documents"),
        ({"documents": [{}]}, "text"),
        ({"documents": [{"text": ""}]}, "text"),
        ({"documents": [{"text": "  \n "}]}, "text"),
        ({"documents": [{"text": "正文", "date": "2024-02-31"}]}, "date"),
        ({"documents": [{"text": "正文", "id": ""}]}, "id"),
        ({"documents": [{"text": "正文", "id": "x" * 513}]}, "id"),
        ({"documents": [{"text": "正文", "title": "题" * 501}]}, "title"),
        ({"documents": [{"text": "正文", "secret": 1}]}, "secret"),
        ({"documents": [{"text": "正文\x00"}]}, "text"),
        ({"documents": [{"text": "正文"}] * 101}, "documents"),
        ({"documents": {"text": "正文"}}, "documents"),
    ],
)
def test_bad_json_documents_are_422(client: TestClient, payload: dict[str, Any], field: str) -> None:
    body = assert_error(client.post("/documents", json=payload, headers=AUTH), 422)
    assert field in body["detail"] and body["errors"]


def test_unparseable_json_upload_is_422(client: TestClient) -> None:
    r = client.post(
        "/documents", content=b'{"documents": [', headers={**AUTH, "content-type": "application/json"}
    )
    assert_error(r, 422)


@pytest.mark.parametrize("ctype", ["text/plain", "application/xml", ""])
def test_other_content_types_are_415(client: TestClient, ctype: str) -> None:
    r = client.post("/documents", content=NOTICE.encode(), headers={**AUTH, "content-type": ctype})
    assert_error(r, 415, "multipart/form-data")


# -- file uploads -----------------------------------------------------------------------------
def _docx(text: str) -> bytes:
    import docx

    d = docx.Document()
    for line in text.split("\n"):
        d.add_paragraph(line)
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


def test_upload_files_with_per_file_status(writable: Callable[..., TestClient], tmp_path: Path) -> None:
    c = writable()
    jsonl = "\n".join(
        [
            json.dumps(
                {"id": "j1", "title": "条目一", "text": "海关通关便利化措施包括提前申报。"},
                ensure_ascii=False,
            ),
            "{not json",
            json.dumps({"title": "条目二", "text": "跨境电商综合试验区建设方案。"}, ensure_ascii=False),
        ]
    )
    files = [
        ("files", ("通知.txt", NOTICE.encode("utf-8"), "text/plain")),
        (
            "files",
            ("gbk.txt", "青岛市关于港口建设的意见\n推进港口转型升级。".encode("gb18030"), "text/plain"),
        ),
        (
            "files",
            (
                "page.html",
                "<html><head><title>港口规划</title></head><body><h1>港口规划</h1><p>建设智慧港口。</p></body></html>".encode(),
                "text/html",
            ),
        ),
        ("files", ("notes.md", "# 会议纪要\n\n加快**冷链物流**基地建设。".encode(), "text/markdown")),
        ("files", ("records.jsonl", jsonl.encode(), "application/octet-stream")),
        (
            "files",
            (
                "word.docx",
                _docx("关于数字经济的实施方案\n发展数字经济核心产业。"),
                "application/octet-stream",
            ),
        ),
        ("files", ("virus.exe", b"MZ\x90\x00", "application/octet-stream")),
        ("files", ("fake.pdf", b"<html>not a pdf</html>", "application/pdf")),
        ("files", ("fake.docx", b"PK\x03\x04 not really", "application/octet-stream")),
        ("files", ("empty.txt", b"", "text/plain")),
        ("files", ("binary.txt", b"\x00\x01\x02\x03" * 50, "text/plain")),
        ("files", ("noext", b"text without an extension", "text/plain")),
    ]
    r = c.post("/documents", files=files, headers=AUTH)
    assert r.status_code == 201, r.text
    status = {f["name"]: f for f in r.json()["files"]}
    assert list(status) == [
        "通知.txt",
        "gbk.txt",
        "page.html",
        "notes.md",
        "records.jsonl",
        "word.docx",
        "virus.exe",
        "fake.pdf",
        "fake.docx",
        "empty.txt",
        "binary.txt",
        "noext.txt",  # no extension, labelled text/plain: read as .txt
    ]
    for name in ("通知.txt", "gbk.txt", "page.html", "notes.md", "records.jsonl", "word.docx", "noext.txt"):
        assert status[name]["status"] == "indexed" and status[name]["documents"], status[name]
    assert (
        len(status["records.jsonl"]["documents"]) == 2 and "line 2" in status["records.jsonl"]["warnings"][0]
    )
    assert status["records.jsonl"]["documents"][0]["id"] == "j1"
    assert "unsupported file type .exe" in status["virus.exe"]["reason"]
    assert "not a PDF" in status["fake.pdf"]["reason"]
    assert "not a .docx" in status["fake.docx"]["reason"]
    assert "empty" in status["empty.txt"]["reason"]
    assert "binary" in status["binary.txt"]["reason"]
    for name in ("virus.exe", "fake.pdf", "fake.docx", "empty.txt", "binary.txt"):
        assert status[name]["status"] == "rejected" and status[name]["documents"] == []
    notice = c.get(f"/documents/{status['通知.txt']['documents'][0]['id']}").json()
    assert notice["source"] == "通知.txt" and notice["title"] == "国务院办公厅关于测试上传功能的通知"
    assert "/tmp" not in json.dumps(c.get("/documents", params={"limit": 100}).json())
    assert (
        c.post("/search", json={"query": "数字经济核心产业", "top_k": 1}).json()["hits"][0]["title"]
        == "关于数字经济的实施方案"
    )
    # the same file again replaces, rather than duplicates, its document
    again = c.post("/documents", files=[files[0]], headers=AUTH).json()
    assert again["replaced"] == [status["通知.txt"]["documents"][0]["id"]]


@pytest.mark.parametrize(
    ("name", "stored"),
    [
        ("../../../../etc/cron.d/evil.txt", "evil.txt"),
        ("..\\..\\windows\\system32\\evil.txt", "evil.txt"),
        ("/absolute/path.txt", "path.txt"),
        (".hidden.txt", "hidden.txt"),
        ("..txt", "upload.txt"),
        ("$(rm -rf ~);`x`.txt", "(rm -rf _)_x.txt"),
        ("长" * 300 + ".txt", "长" * 65 + ".txt"),
        ("报告.TXT", "报告.TXT"),
    ],
)
def test_filenames_are_sanitised(
    writable: Callable[..., TestClient], name: str, stored: str, tmp_path: Path
) -> None:
    c = writable()
    r = c.post("/documents", files=[("files", (name, NOTICE.encode(), "text/plain"))], headers=AUTH)
    assert r.status_code == 201, r.text
    f = r.json()["files"][0]
    assert f["name"] == stored and f["status"] == "indexed"
    assert c.get(f"/documents/{f['documents'][0]['id']}").json()["source"] == stored


def test_nothing_indexable_is_422_with_statuses(client: TestClient) -> None:
    r = client.post(
        "/documents",
        files=[("files", ("a.exe", b"MZ", "x/y")), ("files", ("b.pdf", b"no", "x/y"))],
        headers=AUTH,
    )
    body = assert_error(r, 422, "nothing to index")
    assert [f["status"] for f in body["files"]] == ["rejected", "rejected"]
    assert client.get("/documents").json()["total"] == 10


def test_bad_multipart_uploads(client: TestClient, service: Any) -> None:
    assert_error(
        client.post(
            "/documents", data={"files": "just text"}, files=[("other", ("a.txt", b"x"))], headers=AUTH
        ),
        422,
    )
    assert_error(
        client.post("/documents", files=[("other", ("a.txt", b"x", "text/plain"))], headers=AUTH),
        422,
        "other",
    )
    assert_error(client.post("/documents", data={"files": "just text"}, headers={**AUTH}), 415)
    too_many = [
        ("files", (f"{i}.txt", b"x", "text/plain")) for i in range(service.settings.max_upload_files + 1)
    ]
    assert_error(client.post("/documents", files=too_many, headers=AUTH), 422, "files")
    r = client.post(
        "/documents",
        content=b"--xx\r\nbroken",
        headers={**AUTH, "content-type": "multipart/form-data; boundary=xx"},
    )
    assert r.status_code == 422 or r.status_code == 400, r.text
    assert_error(r, r.status_code)


def test_body_size_limit(writable: Callable[..., TestClient]) -> None:
    c = writable(max_request_bytes=64 * 1024)
    big = ("稳岗返还" * 20000).encode()
    r = c.post("/documents", files=[("files", ("big.txt", big, "text/plain"))], headers=AUTH)
    assert_error(r, 413, "65536 bytes")

    def chunks() -> Any:
        for _ in range(40):
            yield b"x" * 4096

    r = c.post("/documents", content=chunks(), headers={**AUTH, "content-type": "application/json"})
    assert_error(r, 413)
    r = c.post("/search", content=chunks(), headers={"content-type": "application/json"})
    assert_error(r, 413)
    assert c.get("/documents").json()["total"] == 10
    assert c.post("/search", json={"query": "稳岗"}).status_code == 200


def test_docx_that_is_a_zip_without_a_document(client: TestClient) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("hello.txt", "hi")
    r = client.post("/documents", files=[("files", ("x.docx", buf.getvalue(), "x/y"))], headers=AUTH)
    assert "word/document.xml" in assert_error(r, 422)["files"][0]["reason"]


# -- delete -----------------------------------------------------------------------------------
def test_delete_document(writable: Callable[..., TestClient]) -> None:
    c = writable()
    r = c.delete("/documents/d03", headers=AUTH)
    assert r.status_code == 200, r.text
    w = r.json()
    assert w["removed"] == ["d03"] and w["documents"] == 9
    assert_error(c.get("/documents/d03"), 404)
    assert all(
        h["doc_id"] != "d03" for h in c.post("/search", json={"query": "增值税", "top_k": 30}).json()["hits"]
    )
    assert_error(c.delete("/documents/d03", headers=AUTH), 404, "d03")
    assert_error(c.delete("/documents/never-was", headers=AUTH), 404)
