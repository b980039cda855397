"""Every route the chat page's Gradio app mounts is either on the page's allow-list (and reviewed
here as one that stores nothing) or answered 404 without reaching Gradio: an anonymous client can
store no file on the server through ``/ui``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from starlette.routing import BaseRoute, Mount

from policyqa.api.app import create_app
from policyqa.pipeline import build_index
from policyqa.service import QAService
from policyqa.settings import Settings
from policyqa.ui.app import PageRouteGuard
from tests.helpers import HashingEncoder, fixture_documents

#: The reviewed allow-list: (method, Gradio's route template below the mount). Each of these
#: reads (the page, its assets, the event stream) or asks a question; none stores a file.
#: A Gradio upgrade that changes the page's routes fails test_every_gradio_route_is_classified.
REVIEWED = {
    ("GET", "/"),
    ("HEAD", "/"),
    ("GET", "/assets/{path:path}"),
    ("GET", "/static/{path:path}"),
    ("GET", "/theme.css"),
    ("GET", "/favicon.ico"),
    ("GET", "/gradio_api/heartbeat/{session_hash}"),
    ("POST", "/gradio_api/queue/join"),
    ("GET", "/gradio_api/queue/data"),
}


@pytest.fixture(scope="module")
def app_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Path]]:
    root = tmp_path_factory.mktemp("ui-routes")
    gradio_tmp = root / "gradio-tmp"
    gradio_tmp.mkdir()
    mp = pytest.MonkeyPatch()
    mp.setenv("GRADIO_TEMP_DIR", str(gradio_tmp))
    s = Settings(cache_dir=root / "c", index_dir=root / "i", progress=False, chunk_max_chars=120)
    enc = HashingEncoder()
    build_index(fixture_documents(), s.index_dir, s, show_progress=False, encoder=enc)
    svc = QAService(s, encoder=enc)
    svc.warm_up()
    with TestClient(create_app(s, svc, ui=True), raise_server_exceptions=False) as client:
        yield client, gradio_tmp
    svc.close()
    mp.undo()


def _ui_routes(client: TestClient) -> list[tuple[str, str]]:
    """(method, template relative to /ui) of every route the mounted Gradio app serves."""
    app = client.app
    mount = next(r for r in app.router.routes if isinstance(r, Mount) and r.path == "/ui")  # type: ignore[attr-defined]
    assert isinstance(mount.app, PageRouteGuard), "the chat page is mounted without its route guard"
    out: list[tuple[str, str]] = []

    def walk(routes: list[BaseRoute], prefix: str) -> None:
        for r in routes:
            path = getattr(r, "path", "") or ""
            inner = getattr(r, "original_router", None) or getattr(r, "router", None)
            if inner is not None and not hasattr(r, "methods"):
                walk(inner.routes, prefix)
                continue
            for method in sorted(getattr(r, "methods", None) or {"GET"}):
                out.append((method, path[len("/ui") :] if path.startswith("/ui") else path))

    walk(mount.routes, "")
    return out


def _concrete(template: str) -> str:
    return re.sub(r"\{[^}]+\}", "x1", template).replace("=", "=x1") or "/"


def test_every_gradio_route_is_classified(app_client: tuple[TestClient, Path]) -> None:
    client, _ = app_client
    routes = _ui_routes(client)
    assert len(routes) > 40  # Gradio mounts dozens; the page uses a handful
    for method, template in routes:
        allowed = PageRouteGuard.allows(method, _concrete(template))
        if (method, template) in REVIEWED:
            continue
        assert not allowed, f"{method} /ui{template} passes the guard but is not reviewed"
        r = client.request(method, "/ui" + _concrete(template))
        assert r.status_code == 404, (method, template, r.status_code)
        if method != "HEAD":
            assert r.json()["error"] == "not_found"


def test_the_allow_list_is_the_reviewed_list(app_client: tuple[TestClient, Path]) -> None:
    client, _ = app_client
    served = set(_ui_routes(client))
    assert served | {("GET", "/favicon.ico")} >= REVIEWED  # every allowed route exists in Gradio
    for method, template in REVIEWED:
        assert PageRouteGuard.allows(method, _concrete(template)), (method, template)


def test_anonymous_upload_stores_nothing(app_client: tuple[TestClient, Path]) -> None:
    client, gradio_tmp = app_client
    for path in ("/ui/gradio_api/upload", "/ui/upload", "/ui/gradio_api/upload?upload_id=x"):
        r = client.post(path, files={"files": ("x.bin", b"\x00" * 100_000)})
        assert r.status_code == 404
        assert str(gradio_tmp) not in r.text and "/tmp" not in r.text
    assert [p for p in gradio_tmp.rglob("*") if p.is_file()] == []
    # nothing is served from the file system either
    for path in ("/ui/gradio_api/file=/etc/passwd", "/ui/file=/etc/passwd", "/ui/gradio_api/file/etc/passwd"):
        assert client.get(path).status_code == 404


def test_the_page_and_its_queue_still_answer(app_client: tuple[TestClient, Path]) -> None:
    client, _ = app_client
    page = client.get("/ui/")
    assert page.status_code == 200 and "<html" in page.text.lower()
    assert client.get("/ui/theme.css").status_code == 200
    # the queue is reachable (a join without a body is Gradio's own 422, not our 404)
    assert client.post("/ui/gradio_api/queue/join", json={}).status_code == 422
    for path in ("/ui/config", "/ui/gradio_api/info", "/ui/gradio_api/call/answer", "/ui/monitoring"):
        assert client.get(path).status_code == 404
