"""API test fixtures: the fixture corpus indexed with the hashing encoder, served by TestClient."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from policyqa.api.app import create_app
from policyqa.pipeline import build_index
from policyqa.service import QAService
from policyqa.settings import Settings
from tests.helpers import HashingEncoder, fixture_documents

API_KEY = "test-key-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture(scope="session")
def built_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture corpus indexed once per session (copied by the fixtures that write)."""
    root = tmp_path_factory.mktemp("api-index")
    s = Settings(cache_dir=root / "cache", index_dir=root / "index", progress=False, chunk_max_chars=120)
    build_index(fixture_documents(), s.index_dir, s, show_progress=False, encoder=HashingEncoder())
    return root


def make_settings(root: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "cache_dir": root / "cache",
        "index_dir": root / "index",
        "progress": False,
        "chunk_max_chars": 120,
        "api_key": API_KEY,
        "build_demo_if_missing": False,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="module")
def service(built_index: Path) -> Iterator[QAService]:
    """A ready service over a read-only use of the fixture index (tests here must not write)."""
    svc = QAService(make_settings(built_index), encoder=HashingEncoder())
    svc.warm_up()
    yield svc
    svc.close()


@pytest.fixture(scope="module")
def client(service: QAService) -> Iterator[TestClient]:
    """TestClient of the API (no chat page) over the shared read-only service."""
    with TestClient(create_app(service.settings, service, ui=False), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def writable(built_index: Path, tmp_path: Path) -> Iterator[Callable[..., TestClient]]:
    """A factory of clients over a private copy of the fixture index (for write tests)."""
    shutil.copytree(built_index, tmp_path / "root")
    opened: list[tuple[TestClient, QAService]] = []

    def make(**overrides: Any) -> TestClient:
        svc = QAService(make_settings(tmp_path / "root", **overrides), encoder=HashingEncoder())
        svc.warm_up()
        c = TestClient(create_app(svc.settings, svc, ui=False), raise_server_exceptions=False)
        c.__enter__()
        opened.append((c, svc))
        return c

    yield make
    for c, svc in opened:
        c.__exit__(None, None, None)
        svc.close()


def assert_error(response: Any, status: int, *words: str) -> dict[str, Any]:
    """The response is a JSON error with this status whose detail names ``words``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert isinstance(body.get("error"), str) and isinstance(body.get("detail"), str), body
    assert "Traceback" not in response.text and 'File "' not in response.text
    for w in words:
        assert w in body["detail"], (w, body["detail"])
    return body
