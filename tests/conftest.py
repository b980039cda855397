"""Shared fixtures: settings in a temporary cache, the fixture corpus indexed with a hashing encoder."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from policyqa.index.embedded import EmbeddedIndex as Index
from policyqa.pipeline import build_index, open_index
from policyqa.settings import Settings
from tests.helpers import HashingEncoder, fixture_documents

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    """Tests run offline: any attempt to open a non-loopback connection fails loudly."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else address
        if (
            isinstance(host, str)
            and host not in {"127.0.0.1", "localhost", "::1"}
            and not host.startswith("/")
        ):
            raise RuntimeError(f"test tried to reach the network ({host}); tests must run offline")
        return real_connect(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        cache_dir=tmp_path / "cache", index_dir=tmp_path / "index", progress=False, chunk_max_chars=120
    )


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"needs the shared data folder {SHARED_DATA} (not present on this machine)")
    return SHARED_DATA


@pytest.fixture(scope="module")
def fixture_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Index]:
    """The fixture corpus indexed once per module with the hashing encoder."""
    root = tmp_path_factory.mktemp("fixture-index")
    s = Settings(cache_dir=root / "cache", index_dir=root / "index", progress=False, chunk_max_chars=120)
    enc = HashingEncoder()
    build_index(fixture_documents(), s.index_dir, s, show_progress=False, encoder=enc)
    index = open_index(s.index_dir, s, encoder=enc)
    yield index
    index.close()
