"""GET /health, /stats, /, the OpenAPI schema, CORS, and errors that never show a stack trace."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from policyqa import __version__
from policyqa.api.app import create_app
from policyqa.index.layout import INDEX_FORMAT
from policyqa.service import QAService
from tests.api.conftest import assert_error, make_settings
from tests.helpers import HashingEncoder


def test_health_when_ready(client: TestClient) -> None:
    r = client.get("/health")
    assert r.status_code == 200
    h = r.json()
    assert h["status"] == "ok" and h["ready"] is True and h["detail"] is None
    assert h["documents"] == 10 and h["index_version"].startswith("gen-") and h["uptime_s"] >= 0


def test_health_and_requests_while_loading(tmp_path: Path) -> None:
    """/health is 503 until the index is loaded; other routes say why they cannot answer yet."""
    gate = threading.Event()

    class SlowEncoder(HashingEncoder):
        def warm_up(self) -> None:
            gate.wait(30)

    settings = make_settings(tmp_path, build_demo_if_missing=True)
    service = QAService(settings, encoder=SlowEncoder())
    with TestClient(create_app(settings, service, ui=False), raise_server_exceptions=False) as c:
        h = c.get("/health")
        assert h.status_code == 503 and h.json()["ready"] is False
        assert h.json()["status"] in {"starting", "building", "loading"} and h.json()["detail"]
        r = c.post("/search", json={"query": "开放"})
        assert_error(r, 503, "try again")
        assert r.headers["retry-after"] == "5"
        assert_error(c.get("/stats"), 503)
        gate.set()
        service._warm_thread.join(60)  # type: ignore[union-attr]
        h = c.get("/health")
        assert h.status_code == 200 and h.json()["ready"] is True and h.json()["documents"] == 3
        assert c.post("/search", json={"query": "青岛海关"}).json()["hits"]


def test_health_when_the_index_cannot_load(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)  # no index and no demo build
    service = QAService(settings, encoder=HashingEncoder())
    with TestClient(create_app(settings, service, ui=False), raise_server_exceptions=False) as c:
        service._warm_thread.join(30)  # type: ignore[union-attr]
        h = c.get("/health")
        assert h.status_code == 503
        assert h.json()["status"] == "failed" and "no index at" in h.json()["detail"]
        assert_error(c.post("/ask", json={"question": "什么？"}), 503, "could not be loaded")


def test_stats(client: TestClient) -> None:
    s = client.get("/stats").json()
    assert s["documents"] == 10 and s["chunks"] >= 10
    assert s["model"] == {"name": "hashing-bigram", "model_id": "hashing-bigram-256", "dim": 256}
    assert s["index_version"].startswith("gen-") and s["index_format"] == INDEX_FORMAT
    assert s["policyqa_version"] == __version__ and s["built_by"] == __version__
    assert s["chunking"]["max_chars"] == 120 and s["tokenizer"]["name"]


def test_root_links(client: TestClient) -> None:
    body = client.get("/").json()
    assert body["docs"] == "/docs" and body["openapi"] == "/openapi.json" and body["ui"] is None


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("OPTIONS", "/documents", "GET, POST"),
        ("PUT", "/documents/d01", "DELETE, GET"),
        ("GET", "/ask", "POST"),
        ("DELETE", "/health", "GET"),
    ],
)
def test_405_lists_every_allowed_method(client: TestClient, method: str, path: str, allow: str) -> None:
    r = client.request(method, path)
    assert_error(r, 405, allow)
    assert r.headers["allow"] == allow


def test_unknown_route_is_json_404(client: TestClient) -> None:
    assert_error(client.get("/nowhere"), 404, "/nowhere")


def _walk_properties(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    out = []
    for name, model in schema["components"]["schemas"].items():
        for prop, spec in model.get("properties", {}).items():
            out.append((name, prop, spec))
    return out


def test_openapi_describes_every_field(client: TestClient, service: QAService) -> None:
    schema = client.get("/openapi.json").json()
    assert set(schema["paths"]) == {
        "/",
        "/search",
        "/ask",
        "/documents",
        "/documents/{doc_id}",
        "/originals/{doc_id}",
        "/health",
        "/stats",
    }
    missing = [
        f"{model}.{prop}"
        for model, prop, spec in _walk_properties(schema)
        if model not in {"ValidationError", "HTTPValidationError"} and not spec.get("description")
    ]
    assert missing == []
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            assert op.get("description") or op.get("summary"), (method, path)
            for p in op.get("parameters", []):
                assert p.get("description") or p["schema"].get("description"), (path, p["name"])
    comps = schema["components"]["schemas"]
    assert comps["SearchRequest"]["properties"]["query"]["maxLength"] == service.settings.max_query_chars
    assert comps["AskRequest"]["properties"]["top_k"]["maximum"] == service.settings.max_top_k
    body = schema["paths"]["/documents"]["post"]["requestBody"]["content"]
    assert set(body) == {"multipart/form-data", "application/json"}
    assert body["application/json"]["schema"]["$ref"] == "#/components/schemas/DocumentsIn"
    assert "DocumentIn" in comps and "DocumentsIn" in comps
    assert schema["paths"]["/documents"]["post"]["security"] == [{"APIKey": []}]
    assert "422" in schema["paths"]["/search"]["post"]["responses"]
    assert comps["ErrorResponse"]["required"] == ["error", "detail"]


def test_internal_errors_are_json_without_details(
    client: TestClient, service: QAService, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret /srv/internal/path exploded")

    monkeypatch.setattr(service, "search", boom)
    r = client.post("/search", json={"query": "税"})
    body = assert_error(r, 500, "reference")
    assert "secret" not in r.text and "RuntimeError" not in r.text
    ref = body["detail"].split("reference ")[1].split(")")[0]
    assert any(ref in rec.getMessage() and rec.exc_info for rec in caplog.records)


def test_cors_is_closed_by_default(client: TestClient) -> None:
    r = client.options(
        "/search", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert "access-control-allow-origin" not in r.headers
    r = client.post("/search", json={"query": "税"}, headers={"Origin": "https://evil.example"})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers


def test_cors_allows_configured_origins(writable: Callable[..., TestClient]) -> None:
    c = writable(cors_origins=["https://intranet.example"])
    ok = c.options(
        "/search", headers={"Origin": "https://intranet.example", "Access-Control-Request-Method": "POST"}
    )
    assert ok.headers["access-control-allow-origin"] == "https://intranet.example"
    other = c.post("/search", json={"query": "税"}, headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers
